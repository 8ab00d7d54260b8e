// Bugs of issue 14 in the engine, each with the test that failed before its fix: a segment
// preparation that fails after the rotation into it began, a discarded segment the module did
// not create, and an epoch barrier refused after the global epoch moved.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { FaultyBackend } from "../src/io/faulty.ts";
import { SyncBackend } from "../src/io/sync.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { asPut, readCore, smallConfig, str, tempDir } from "./_helpers.ts";

const VALUE = new Uint8Array(1000).fill(7);

Deno.test("a segment preparation failing after the rotation into it began refuses an append and leaves the core usable", async () => {
  await using dir = await tempDir();
  const cfg = smallConfig(dir.path, { backend: "sync" });
  const inner = new SyncBackend();
  // Preparation 1 is segment 0 (awaited at open), 2 is segment 1 (in the background).
  const backend = new FaultyBackend(inner, { failPrepareAt: 2, errno: 28 });
  const log = await CoreLog.open(cfg, 0, { backend });
  // Synchronously, before segment 1's preparation settles: segment 0 fills, the log rotates.
  let n = 0;
  while (log.position.segment === 0) log.appendPut(`k-${++n}`, VALUE);
  assertEquals(log.position.segment, 1);
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(backend.injected, 1);
  assertEquals(log.failure, undefined, "a failed preparation does not fail the core");
  const refused = assertThrows(() => log.appendPut("refused", VALUE), PerCoreWalError);
  assertEquals([refused.code, refused.errno], ["Io", "ENOSPC"]);
  // The refusal retried the preparation: the next append is taken and everything is durable.
  log.appendPut(`k-${++n}`, VALUE);
  await log.sync();
  await log.close();
  await backend.close();
  const entries = await readCore(cfg);
  assertEquals(entries.length, n);
  assertEquals(str(asPut(entries[n - 1].operation).key), `k-${n}`);
});

Deno.test("a segment whose creation failed with EEXIST is not removed: the module did not create it", async () => {
  await using dir = await tempDir();
  const cfg = smallConfig(dir.path, { backend: "sync" });
  const log = await CoreLog.open(cfg, 0);
  // Segment 1 is prepared at open; segment 2 is prepared when the log rotates into segment 1.
  const foreign = cfg.segmentPath(0, 2);
  await Deno.writeTextFile(foreign, "not ours");
  let error: unknown;
  for (let i = 0; i < 10_000 && error === undefined; i++) {
    try {
      log.appendPut(`k-${i}`, VALUE);
    } catch (e) {
      error = e;
    }
  }
  // The next segment is created in the background: a loop that never yields may see its
  // failure at the sync after it instead (the batches of that segment wait for its file).
  if (error === undefined) await log.sync().catch((e) => error = e);
  if (!(error instanceof PerCoreWalError)) throw new Error(`no error: ${error}`);
  assertEquals(error.errno, "EEXIST", error.message);
  // Records appended into that segment before the failure showed cannot be made durable: close()
  // says so with the same error (it did not in the case where the append itself was refused).
  const closing = await log.close().then(() => undefined, (e) => e);
  if (closing !== undefined) {
    assert(closing instanceof PerCoreWalError && closing.errno === "EEXIST", String(closing));
  }
  assertEquals(await Deno.readTextFile(foreign), "not ours");
});

Deno.test("appendEpochBarrier refused (Closed) leaves the global epoch where it was", async () => {
  await using dir = await tempDir();
  const cfg = smallConfig(dir.path, { backend: "sync" });
  const manager = await PerCoreWalManager.open(cfg);
  try {
    const writer = manager.writer(0);
    const before = manager.epoch;
    writer.close();
    assertThrows(() => writer.appendEpochBarrier(before + 5), PerCoreWalError, "closed");
    assertEquals(manager.epoch, before, "no barrier was written: the epoch did not move");
  } finally {
    await manager.close();
  }
});
