// manager.watch() and watchWal(): live streams of durable entries, on real rings and files.
import { assert, assertEquals, assertInstanceOf, assertRejects, assertThrows } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import type { PerCoreWalEntry } from "../src/types.ts";
import { watchWal } from "../src/watch.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

function config(dir: string, cores: number) {
  return new PerCoreWalConfig(`${dir}/wal`, cores, { segmentSizeBytes: 64 * 1024 });
}

const VALUE = "v".repeat(400);

/** Appends `n` puts to core `c` and waits until they are durable. */
async function fill(m: PerCoreWalManager, c: number, n: number): Promise<void> {
  const w = m.writer(c);
  for (let i = 0; i < n; i++) w.appendPut(`k${c}-${i}`, VALUE);
  await w.sync();
}

/** Reads until every core in `want` reached its count; checks order and durability. */
async function take(
  reader: ReadableStreamDefaultReader<PerCoreWalEntry>,
  m: PerCoreWalManager | undefined,
  want: Record<number, number>,
  next: Record<number, number>,
): Promise<number> {
  let got = 0;
  while (Object.entries(want).some(([c, n]) => next[Number(c)] <= n)) {
    const r = await reader.read();
    if (r.done) throw new Error("the stream ended early");
    const e = r.value;
    if (m !== undefined) {
      assert(e.sequence <= m.writer(e.coreId).durableSequence, "delivered before durable");
    }
    assertEquals(Number(e.sequence), next[e.coreId], `core ${e.coreId} in sequence order, once`);
    next[e.coreId]++;
    got++;
  }
  return got;
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

test("manager.watch() delivers durable entries from before and after the call, each once, in order, across rotations", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(config(dir.path, 2));
  await fill(m, 0, 300); // about two segments of 64 KiB
  const reader = m.watch().getReader();
  const next = { 0: 1, 1: 1 };
  assertEquals(await take(reader, m, { 0: 300 }, next), 300);
  await Promise.all([fill(m, 0, 400), fill(m, 1, 250)]);
  assertEquals(await take(reader, m, { 0: 700, 1: 250 }, next), 650);
  assert(m.syncedPositions()[0].segment >= 3, "core 0 rotated segments");
  // The test's resource and op sanitizers check that nothing is left open or pending.
  await reader.cancel();
});

test("manager.watch({ coreId, from }) resumes exactly at a sequence, in a later segment", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(config(dir.path, 2));
  await Promise.all([fill(m, 0, 400), fill(m, 1, 10)]);
  const seen: number[] = [];
  for await (const e of m.watch({ coreId: 0, from: { 0: 250 } })) {
    assertEquals(e.coreId, 0);
    seen.push(Number(e.sequence));
    if (seen.length === 151) break;
  }
  assertEquals(seen, Array.from({ length: 151 }, (_, i) => 250 + i));
});

test("manager.watch() ends once the manager is closed and everything durable was read", async () => {
  await using dir = await tempDir();
  const m = await PerCoreWalManager.open(config(dir.path, 1));
  await fill(m, 0, 5);
  const stream = m.watch();
  m.writer(0).appendPut("last", "one");
  await m.close();
  const all = await Array.fromAsync(stream);
  assertEquals(all.map((e) => Number(e.sequence)), [1, 2, 3, 4, 5, 6]);
});

test("manager.watch({ signal }): aborting rejects the pending read with the signal's reason", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(config(dir.path, 1));
  await fill(m, 0, 3);
  const controller = new AbortController();
  const reader = m.watch({ signal: controller.signal }).getReader();
  assertEquals(await take(reader, m, { 0: 3 }, { 0: 1 }), 3);
  const pending = reader.read(); // nothing more is appended: it waits
  const reason = new Error("enough");
  controller.abort(reason);
  const e = await assertRejects(() => pending);
  assertEquals(e, reason);
  await assertRejects(() => reader.read(), Error, "enough");
});

test("manager.watch() with an already aborted signal errors at once with its reason", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(config(dir.path, 1));
  const reader = m.watch({ signal: AbortSignal.abort("gone") }).getReader();
  assertEquals(await assertRejects(() => reader.read()), "gone");
});

test("manager.watch() from a sequence a checkpoint retired: Retired, naming the core and sequence", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(config(dir.path, 1));
  await fill(m, 0, 3000); // 1.3 MB of records: more than one pull of the stream reads (1 MiB)
  // A follower that read the first entries, then falls behind.
  const behind = m.watch().getReader();
  assertEquals((await behind.read()).value?.sequence, 1);
  const coordinator = new CheckpointCoordinator(m, { retain: 1 });
  await coordinator.checkpoint();
  await fill(m, 0, 10);
  await coordinator.checkpoint();
  const e = await assertRejects(
    () => Array.fromAsync(m.watch({ from: { 0: 1 } })),
    PerCoreWalError,
    "Core 0: cannot read from sequence 1",
  );
  assertEquals([e.code, e.coreId], ["Retired", 0]);
  const late = await assertRejects(async () => {
    // Entries on from sequence 2 until the retired segment is reached: never a gap.
    await take(behind, m, { 0: 3010 }, { 0: 2 });
  }, PerCoreWalError);
  assert(/cannot read from sequence \d+/.test(late.message), late.message);
});

test("manager.watch() refuses bad options", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(config(dir.path, 2));
  const bad = assertThrows(() => m.watch({ coreId: 2 }), PerCoreWalError);
  assertEquals(bad.code, "InvalidCoreId");
  assertThrows(() => m.watch({ from: { 0: 0 } }), RangeError, "from[0]");
  assertThrows(() => m.watch({ from: { 0: 1.5 } }), RangeError);
  assertThrows(() => m.watch({ from: { 0: "1" as unknown as number } }), TypeError);
  assertThrows(() => m.watch({ from: { 5: 1 } }), PerCoreWalError, "out of range");
  assertThrows(() => m.watch({ signal: "x" as unknown as AbortSignal }), TypeError);
});

test("watchWal(dir) follows another writer's files: durable entries in order across rotations, until aborted", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(config(dir.path, 2));
  await fill(m, 0, 200);
  const controller = new AbortController();
  const reader = watchWal(`${dir.path}/wal`, { intervalMs: 5, signal: controller.signal })
    .getReader();
  const next = { 0: 1, 1: 1 };
  assertEquals(await take(reader, undefined, { 0: 200 }, next), 200);
  await Promise.all([fill(m, 0, 300), fill(m, 1, 20)]);
  assertEquals(await take(reader, undefined, { 0: 500, 1: 20 }, next), 320);
  controller.abort();
  await assertRejects(() => reader.read(), DOMException);
});

test("manager.mergeSegments() streams (an AsyncIterable), like the free mergeSegments(dir)", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(config(dir.path, 2));
  m.writer(0).appendPut("a", "1");
  m.writer(1).appendPut("b", "2");
  const it = m.mergeSegments();
  assertInstanceOf(it[Symbol.asyncIterator], Function);
  assertEquals("then" in it, false);
  const all = await Array.fromAsync(it);
  assertEquals(all.map((e) => [e.coreId, e.sequence]).sort(), [[0, 1], [1, 1]]);
});
