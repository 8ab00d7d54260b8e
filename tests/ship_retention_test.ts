// Retention with shippers: checkpoints never retire a segment holding an entry above the lowest
// shipped mark of a registered shipper (real manager, real files), also across a reopen; the
// unshipped limit's hold (holdAppends) and its opt-in drop (dropUnshipped).
import { assert, assertEquals, assertGreater, assertRejects, assertThrows } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import type { WalEvent } from "../src/events.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { scanSegment } from "../src/segment_probes.ts";
import { appendsHeld, holdAppends } from "../src/ship_hold.ts";
import { dropUnshipped, marksPath, ShipMarks } from "../src/ship_marks.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

function config(dir: string, cores = 1) {
  return new PerCoreWalConfig(`${dir}/wal`, cores, { segmentSizeBytes: 64 * 1024 });
}

/** Appends `n` puts of ~200 bytes to core `coreId`, durable; returns the last sequence. */
async function fill(m: PerCoreWalManager, n: number, coreId = 0): Promise<number> {
  const w = m.writer(coreId);
  let last = 0;
  for (let i = 0; i < n; i++) last = w.appendPut(`key-${i % 50}`, "v".repeat(200));
  await w.waitDurable(last);
  return last;
}

/** Each started segment of core `coreId` with the first sequence its header names. */
async function segments(cfg: PerCoreWalConfig, coreId = 0) {
  const out: { index: number; first: number }[] = [];
  for (const s of listCoreSegments(cfg, coreId)) {
    const { header } = await scanSegment(s.path);
    // A segment prepared ahead has no header yet.
    if (header !== undefined) out.push({ index: s.index, first: header.firstSequence });
  }
  return out;
}

/**
 * Asserts that entry `mark + 1` and every later one is still on disk (the first segment starts at
 * or before it), and that retirement went as far as the mark allows (the second segment starts
 * after it), unless the checkpoint's barrier stops it first.
 */
async function assertHeldAt(cfg: PerCoreWalConfig, mark: number, coreId = 0) {
  const segs = await segments(cfg, coreId);
  assert(segs[0].first <= mark + 1, `entry ${mark + 1} was retired: ${JSON.stringify(segs)}`);
  assert(segs.length > 1 && segs[1].first > mark + 1, `over-held: ${JSON.stringify(segs)}`);
}

test("a checkpoint keeps the segments a registered shipper has not shipped", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  const m = await PerCoreWalManager.open(cfg);
  await using marks = ShipMarks.open(cfg, "nats");
  await fill(m, 2000);
  const before = await segments(cfg);
  assertGreater(before.length, 4);
  const coordinator = new CheckpointCoordinator(m, { retain: 1 });
  await coordinator.checkpoint();
  assertEquals(await segments(cfg), before, "nothing shipped: every segment stays");
  // Advancing the mark lets the next checkpoint retire what it covers, and only that.
  const mark = before[3].first + 5;
  await marks.advance(0, mark);
  await fill(m, 10);
  await coordinator.checkpoint();
  await assertHeldAt(cfg, mark);
  assertEquals((await segments(cfg))[0].index, 3);
  // Segments kept before the checkpoint's barriers change nothing for reopen and recovery.
  await m.close();
  await (await PerCoreWalManager.open(cfg)).close();
  using r = await recoverPerCore(cfg.baseDir);
  assertEquals(r.state.size, 50);
});

test("the marks files hold segments across a reopen; a removed shipper no longer holds", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  let m = await PerCoreWalManager.open(cfg);
  const marks = ShipMarks.open(cfg, "nats");
  await fill(m, 2000);
  const before = await segments(cfg);
  const mark = before[2].first;
  await marks.advance(0, mark);
  await marks.close();
  await m.close();
  // A new process: no ShipMarks open, only the file.
  m = await PerCoreWalManager.open(cfg);
  try {
    await fill(m, 10);
    await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
    await assertHeldAt(cfg, mark);
    assertEquals((await segments(cfg))[0].index, 2, "segment 2 holds entry mark + 1");
    // Detached for good: the next checkpoint retires up to its barrier.
    assertEquals(ShipMarks.remove(cfg, "nats"), true);
    assertEquals(ShipMarks.list(cfg), []);
    await fill(m, 10);
    const meta = await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
    assertEquals((await segments(cfg))[0].index, meta.walPositions[0].segment);
  } finally {
    await m.close();
  }
});

test("the lowest mark of several shippers holds, per core", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path, 2);
  await using m = await PerCoreWalManager.open(cfg);
  await using a = ShipMarks.open(cfg, "a");
  await using b = ShipMarks.open(cfg, "b");
  await fill(m, 2000, 0);
  await fill(m, 2000, 1);
  const s0 = await segments(cfg, 0);
  const s1 = await segments(cfg, 1);
  await a.advance(0, s0[4].first);
  await b.advance(0, s0[2].first);
  await a.advance(1, s1[1].first);
  await b.advance(1, s1[3].first);
  await fill(m, 10, 0);
  await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
  await assertHeldAt(cfg, s0[2].first, 0);
  await assertHeldAt(cfg, s1[1].first, 1);
});

test("an invalid marks file holds every segment of every core", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  await using m = await PerCoreWalManager.open(cfg);
  const marks = ShipMarks.open(cfg, "nats");
  await fill(m, 2000);
  const before = await segments(cfg);
  await marks.advance(0, before[3].first);
  await marks.close();
  // Forged: a byte changed, so the checksum fails.
  const path = marksPath(cfg.baseDir, "nats");
  const bytes = Deno.readFileSync(path);
  bytes[bytes.indexOf(0x22) + 1] ^= 1;
  Deno.writeFileSync(path, bytes);
  assert(ShipMarks.list(cfg)[0].invalid !== undefined);
  await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
  assertEquals(await segments(cfg), before);
});

test("holdAppends refuses a core's appends with Backpressure, reports it, and releases them", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path, 2);
  const events: WalEvent[] = [];
  const m = await PerCoreWalManager.open(cfg, { onEvent: (e) => events.push(e) });
  try {
    const before = m.writer(0).appendPut("a", "1");
    assertEquals(holdAppends(m, 0, true, "1 MiB unshipped"), true);
    assertEquals(holdAppends(m, 0, true), false, "already held");
    assert(appendsHeld(m, 0));
    const e = assertThrows(() => m.writer(0).appendPut("b", "2"), PerCoreWalError);
    assertEquals(e.code, "Backpressure");
    assert(/unshipped limit/.test(e.message), e.message);
    await assertRejects(() => m.writer(0).appendPutAsync("b", "2"), PerCoreWalError, "unshipped");
    assertThrows(() => m.writer(0).appendBatch([{ type: "put", key: "c", value: "3" }]));
    // The other core, what was appended before, and checkpoints (their barriers) go on.
    m.writer(1).appendPut("x", "1");
    await m.writer(0).waitDurable(before);
    await new CheckpointCoordinator(m).checkpoint();
    assertEquals(m.writer(0).sequence, before + 1, "only the checkpoint's barrier was appended");
    assertEquals(holdAppends(m, 0, false), true);
    assert(!appendsHeld(m, 0));
    assertEquals(m.writer(0).appendPut("b", "2"), before + 2);
    const mine = events.filter((e) => e.type.startsWith("backpressure"));
    assertEquals(mine, [
      {
        type: "backpressureBegan",
        coreId: 0,
        cause: "unshippedLimit",
        pendingBytes: mine[0].type === "backpressureBegan" ? mine[0].pendingBytes : -1,
        reason: "1 MiB unshipped",
      },
      { type: "backpressureEnded", coreId: 0, cause: "unshippedLimit" },
    ]);
    assertThrows(() => holdAppends(m, 2, true), PerCoreWalError, "out of range");
    assertThrows(() => holdAppends(m, 0, "yes" as unknown as boolean), TypeError);
  } finally {
    await m.close();
  }
});

test("a held core closes, and then refuses appends as closed; a hold never hides it", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  const m = await PerCoreWalManager.open(cfg);
  const w = m.writer(0);
  holdAppends(m, 0, true);
  await m.close();
  assertEquals(holdAppends(m, 0, false), false);
  const e = assertThrows(() => w.appendPut("a", "1"), PerCoreWalError);
  assertEquals(e.code, "Closed");
});

test("dropUnshipped advances the mark past unshipped entries, loudly, and retention follows", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  await using m = await PerCoreWalManager.open(cfg);
  const events: WalEvent[] = [];
  await using marks = ShipMarks.open(cfg, "nats", { onEvent: (e) => events.push(e) });
  await fill(m, 2000);
  const before = await segments(cfg);
  await marks.advance(0, 10);
  const upto = before[3].first - 1;
  assertEquals(await dropUnshipped(marks, 0, upto), { fromSequence: 11, toSequence: upto });
  assertEquals(events, [
    { type: "unshippedDropped", coreId: 0, shipper: "nats", fromSequence: 11, toSequence: upto },
  ]);
  assertEquals(marks.shipped(0), upto);
  assertEquals(await dropUnshipped(marks, 0, 5), undefined, "shipped already: nothing dropped");
  assertEquals(events.length, 1);
  await fill(m, 10);
  await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
  await assertHeldAt(cfg, upto);
  assertEquals((await segments(cfg))[0].index, 3);
});
