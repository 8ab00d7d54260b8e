// shipToNats's options: defaults, and wrong arguments refused before anything connects.
import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { shipSettings } from "../src/ship/options.ts";
import { shipToNats } from "../src/ship/ship_to_nats.ts";
import { readNatsStream } from "../src/ship/read.ts";

Deno.test("shipToNats options: defaults", () => {
  const s = shipSettings({ servers: "nats://127.0.0.1:1", node: "n-1" });
  assertEquals(s.servers, ["nats://127.0.0.1:1"]);
  assertEquals([s.stream, s.subject, s.maxRecordsPerMessage, s.maxBytesPerMessage], [
    "WAL",
    "wal",
    1024,
    512 * 1024,
  ]);
  assertEquals([s.lingerMs, s.retryMaxMs, s.publishTimeoutMs, s.intervalMs], [2, 5000, 5000, 20]);
});

Deno.test("shipToNats options: wrong ones are refused with TypeError or RangeError", () => {
  const ok = { servers: "nats://127.0.0.1:1", node: "n1" };
  assertThrows(
    () => shipSettings({ ...ok, maxRecords: 5 } as never),
    TypeError,
    "did you mean maxRecordsPerMessage?",
  );
  assertThrows(() => shipSettings({ ...ok, node: "a.b" }), TypeError, "node");
  assertThrows(() => shipSettings({ ...ok, node: "" }), TypeError, "node");
  assertThrows(() => shipSettings({ ...ok, subject: "wal..x" }), TypeError, "subject");
  assertThrows(() => shipSettings({ ...ok, stream: "A B" }), TypeError, "stream");
  assertThrows(() => shipSettings({ ...ok, servers: [] }), TypeError, "servers");
  assertThrows(() => shipSettings({ ...ok, maxRecordsPerMessage: 0 }), RangeError);
  assertThrows(() => shipSettings({ ...ok, lingerMs: 1.5 }), RangeError);
  assertThrows(() => shipSettings({ ...ok, retryMaxMs: "1" as never }), TypeError);
  assertThrows(() => shipSettings({ ...ok, signal: {} as never }), TypeError, "AbortSignal");
});

Deno.test("shipToNats refuses a source that is neither a manager nor a path", async () => {
  await assertRejects(
    () => shipToNats(42 as never, { servers: "nats://127.0.0.1:1", node: "n1" }),
    TypeError,
    "source",
  );
});

Deno.test("readNatsStream refuses an unknown option before connecting", async () => {
  await assertRejects(
    () => Array.fromAsync(readNatsStream({ servers: "nats://127.0.0.1:1", nodes: "x" } as never)),
    TypeError,
    "did you mean node?",
  );
});
