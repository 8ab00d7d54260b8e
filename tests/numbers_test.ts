// The one rule for numbers (src/types.ts): sequences, epochs, positions, ids, offsets and
// watermarks are safe-integer numbers in and out; bad ones are refused the same way everywhere;
// a u64 above 2^53 - 1 on disk is refused, never rounded; every result survives JSON.stringify.
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  CheckpointCoordinator,
  CoreLog,
  mergeSegments,
  PerCoreWalError,
  PerCoreWalManager,
  recoverPerCore,
} from "../mod.ts";
import {
  checkRecord,
  decodeSegmentHeader,
  encodeSegmentHeader,
  R_CRC,
  R_SEQUENCE,
  recordCrc,
  RecordType,
  saltState,
  writeRecordHeader,
} from "../src/format.ts";
import { crc32c } from "../src/crc32c.ts";
import { ignoreWithoutUring, smallConfig, tempDir } from "./_helpers.ts";

const test = (name: string, fn: () => Promise<void> | void) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

/** A bigint, a fraction, a negative number and 2^53 as an argument: the same errors everywhere. */
function assertRefusesBadNumbers(call: (x: number) => unknown, what: string): void {
  assertThrows(() => call(1n as unknown as number), TypeError, "pass a number", what);
  assertThrows(() => call("1" as unknown as number), TypeError, "must be a number", what);
  assertThrows(() => call(1.5), RangeError, "safe integer", what);
  assertThrows(() => call(-1), RangeError, "safe integer", what);
  assertThrows(() => call(2 ** 53), RangeError, "safe integer", what);
}

test("sequences are numbers: waitDurable(1) works, and every entry point refuses a bigint, a fraction, a negative and 2^53 alike", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(smallConfig(dir.path, {}, 2));
  const w = m.writer(0);
  const seq = w.appendPut("k", "v");
  assertEquals(typeof seq, "number");
  assertEquals(seq, 1);
  await w.waitDurable(1);
  assertEquals(w.durableSequence, 1);
  assertEquals(m.epoch, 0);
  assertEquals(typeof m.advanceEpoch(), "number");
  assertRefusesBadNumbers((x) => w.appendCheckpoint(x), "appendCheckpoint");
  assertRefusesBadNumbers((x) => w.appendCommit({ src: x }), "appendCommit offset");
  assertRefusesBadNumbers((x) => w.appendEpochBarrier(x), "appendEpochBarrier");
  assertRefusesBadNumbers((x) => w.append({ type: "checkpoint", id: x }), "append");
  assertRefusesBadNumbers((x) => mergeSegments(dir.path, { fromEpoch: x }), "mergeSegments");
  // A watermark may be negative (an i64 on disk), but is still a safe integer.
  w.appendCommit({ src: 1 }, -5);
  assertThrows(() => w.appendCommit({ src: 1 }, 1n as unknown as number), TypeError);
  assertThrows(() => w.appendCommit({ src: 1 }, 2 ** 53), RangeError);
  for (const bad of [1n, 1.5, -1, 2 ** 53]) {
    await assertRejects(() => w.waitDurable(bad as number), bad === 1n ? TypeError : RangeError);
  }
  assertEquals(w.appendPut("k2", "v2"), 3, "no sequence was taken by the refused appends");
});

test("CoreLog: appends return numbers, onDurable gets a number, setEpoch and waitDurable refuse a bigint", async () => {
  await using dir = await tempDir();
  const durable: unknown[] = [];
  await using log = await CoreLog.open(smallConfig(dir.path), 0, {
    onDurable: (s, p) => durable.push(s, p.sequence),
  });
  assertEquals(log.appendPut("a", "1"), 1);
  assertEquals(log.appendCommit({ src: 10 }, 99), 2);
  await log.waitDurable(2);
  assertEquals([log.sequence, log.durableSequence, log.position.sequence], [2, 2, 2]);
  assert(durable.length > 0 && durable.every((x) => typeof x === "number"), String(durable));
  assertRefusesBadNumbers((x) => log.setEpoch(x), "setEpoch");
  await assertRejects(() => log.waitDurable(2n as unknown as number), TypeError, "pass a number");
});

test("results survive JSON.stringify: checkpoint metadata, recovery result and report, metrics, segmentStats, positions", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path, {}, 2);
  const m = await PerCoreWalManager.open(config);
  for (let i = 0; i < 50; i++) m.writer(i % 2).appendPut(`k${i}`, `v${i}`);
  m.writer(0).appendCommit({ "kafka:0": 1200 }, 77);
  await m.syncAll();
  const meta = await new CheckpointCoordinator(m).checkpoint();
  const metaJson = JSON.parse(JSON.stringify(meta));
  assertEquals(metaJson.epoch, 0);
  assertEquals(metaJson.offsets, { "kafka:0": 1200 });
  assertEquals(metaJson.watermarks, { "kafka:0": 77 });
  assertEquals(metaJson.watermark, 77);
  assertEquals(metaJson.stateEntries, 50);
  assertEquals(metaJson.walPositions.map((p: { sequence: number }) => typeof p.sequence), [
    "number",
    "number",
  ]);
  m.writer(1).appendCommit({ "kafka:0": 1300 });
  await m.syncAll();

  const positions = JSON.parse(JSON.stringify(m.positions()));
  const synced = JSON.parse(JSON.stringify(m.syncedPositions()));
  assertEquals(synced, m.syncedPositions());
  assertEquals(positions[1].sequence, 27, "25 puts, the barrier and the commit");

  // The latency histogram is published by each core's Worker at most every 20 ms.
  for (let i = 0; i < 250 && m.metrics().some((c) => c.syncLatency.count === 0); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const metrics = JSON.parse(JSON.stringify(m.metrics()));
  assertEquals(metrics.length, 2);
  for (const c of metrics) {
    assertEquals(typeof c.recordsAppended, "number");
    const l = c.syncLatency;
    assert(l.count > 0, "fdatasyncs were timed");
    for (const us of [l.p50Us, l.p99Us, l.maxUs, c.syncLatencyBuckets.sumUs]) {
      assert(Number.isInteger(us), `latency ${us} is whole microseconds`);
    }
  }

  const stats = await m.segmentStats();
  const statsJson = JSON.parse(JSON.stringify(stats));
  assertEquals(statsJson, stats);
  const core0 = statsJson.filter((s: { coreId: number }) => s.coreId === 0);
  assertEquals(Math.max(...core0.map((s: { lastSequence: number }) => s.lastSequence)), 27);
  await m.close();

  using r = await recoverPerCore(config.baseDir);
  const rJson = JSON.parse(JSON.stringify(r));
  assertEquals(rJson.offsets, { "kafka:0": 1300 });
  assertEquals(rJson.watermarks, { "kafka:0": 77 });
  assertEquals(rJson.state, { size: 50 });
  assertEquals(rJson.checkpoint.id, meta.id);
  assertEquals(rJson.checkpoint.offsets, { "kafka:0": 1200 });
  assertEquals(rJson.finalEpoch, r.finalEpoch);
  assertEquals(rJson.entriesReplayed, r.entriesReplayed);
  assertEquals(rJson.report, r.report);
  assertEquals(rJson.walPositions, r.walPositions);
  assertEquals(typeof rJson.finalEpoch, "number");
});

Deno.test("a record whose sequence is above 2^53 - 1 (valid CRC) is refused by the decoder, not rounded", () => {
  const salt = saltState(0x1234);
  const bytes = new Uint8Array(64);
  const view = new DataView(bytes.buffer);
  const len = 38 + 8;
  writeRecordHeader(view, 0, len, RecordType.checkpoint, 0, 0, 1, 1, 0);
  const seal = () => view.setUint32(R_CRC, recordCrc(bytes, 0, len, salt), true);
  seal();
  const ctx = { salt, coreId: 0, maxRecordBytes: 1024, version: 2 };
  assertEquals(checkRecord(bytes, view, 0, bytes.length, ctx).status, "ok");
  view.setUint32(R_SEQUENCE + 4, 0x200000, true); // 2^53 + 1
  seal();
  const c = checkRecord(bytes, view, 0, bytes.length, ctx);
  assertEquals(c, { status: "bad", code: "Corrupted", reason: "sequence above 2^53 - 1" });
  // The body of a checkpoint (its id) likewise.
  view.setUint32(R_SEQUENCE + 4, 0, true);
  view.setUint32(38 + 4, 0xffffffff, true);
  seal();
  const id = checkRecord(bytes, view, 0, bytes.length, ctx);
  assertEquals(id.status === "bad" && id.reason, "body value above 2^53 - 1");
});

Deno.test("a segment header whose first sequence is above 2^53 - 1 is refused as Corrupted", () => {
  const h = encodeSegmentHeader({
    coreId: 0,
    segmentIndex: 0,
    firstSequence: 1,
    epoch: 0,
    createdAtNs: 0n,
    salt: 1,
  });
  assertEquals(decodeSegmentHeader(h).firstSequence, 1);
  const v = new DataView(h.buffer);
  v.setUint32(28, 0x00400000, true);
  v.setUint32(60, crc32c(h.subarray(0, 60)), true); // a valid CRC: only the value is wrong
  const e = assertThrows(() => decodeSegmentHeader(h), PerCoreWalError);
  assertEquals(e.code, "Corrupted");
  assert(e.message.includes("first sequence above 2^53 - 1"), e.message);
});
