// Atomic batches (issue 16, item 5): one record of type `atomicBatch` (format v3) that takes one
// sequence per operation; readers expand it into consecutive entries, so recovery, merge and the
// CLI see all of a batch or none of it.
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { crc32c } from "../src/crc32c.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { mergeSegments } from "../src/merge_stream.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { CoreWalWriter } from "../src/writer.ts";
import type { BatchOperationInput } from "../src/batch_record.ts";
import type { CommitOperation, PerCoreWalEntry } from "../src/types.ts";
import {
  asPut,
  ignoreWithoutUring,
  readCore,
  runDeno,
  smallConfig,
  str,
  tempDir,
  walVerify,
} from "./_helpers.ts";
import { asStrings } from "./_model.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

const BATCH: BatchOperationInput[] = [
  { type: "put", key: "b", value: "2" },
  { type: "delete", key: "a" },
  { type: "commit", offsets: { src: 7 }, watermark: 3 },
];

test("CoreLog.appendBatch: one record, consecutive sequences, read back as entries", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path);
  {
    await using log = await CoreLog.open(config, 0);
    assertEquals(log.appendPut("a", "1"), 1);
    assertEquals(log.appendBatch(BATCH), 4);
    assertEquals(log.appendPut("c", "3"), 5);
    await log.sync();
  }
  const entries = await readCore(config);
  assertEquals(entries.map((e) => e.sequence), [1, 2, 3, 4, 5]);
  assertEquals(entries.map((e) => e.operation.type), ["put", "put", "delete", "commit", "put"]);
  assertEquals(str(asPut(entries[1].operation).value), "2");
  // The batch's entries share the record's epoch and timestamp.
  assertEquals(entries[2].timestampNs, entries[1].timestampNs);
  assertEquals(entries[3].timestampNs, entries[1].timestampNs);
  const commit = entries[3].operation as CommitOperation;
  assertEquals(commit.offsets.get("src"), 7);
  assertEquals(commit.watermark, 3);
  // One record: the segment holds the batch once (stats count entries, not records).
  const segs = listCoreSegments(config, 0);
  using r = await PerCoreWalReader.open(segs[0].path, { isLastSegment: true });
  const offsets: number[] = [];
  const lengths: number[] = [];
  for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
    offsets.push(x.offset);
    lengths.push(x.length);
  }
  assertEquals(offsets[1], offsets[2]);
  assertEquals(offsets[2], offsets[3]);
  assertEquals(r.stats.entryCount, 5);
  assertEquals(r.stats.lastSequence, 5);
  // The record's bytes are counted once, on the batch's last entry: the entry-by-entry read
  // and the buffered one (readEntries) agree.
  assertEquals(lengths[1], 0);
  assertEquals(lengths[2], 0);
  assertEquals(offsets[4], offsets[3] + lengths[3]);
  using fast = await PerCoreWalReader.open(segs[0].path, { isLastSegment: true });
  const e: PerCoreWalEntry[] = [];
  const fo: number[] = [];
  const fl: number[] = [];
  const { count } = await fast.readEntries(e, fo, fl);
  assertEquals(count, 5);
  assertEquals(fl.slice(0, count), lengths);
  assertEquals(fo.slice(0, count), offsets);
});

test("a batch survives reopen and recovery as a unit; merge and the commit fold see its entries", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path, {}, 2);
  {
    await using log = await CoreLog.open(config, 0);
    log.appendPut("a", "1");
    log.appendBatch(BATCH);
    await log.sync();
  }
  {
    // Reopen: the next sequence follows the batch's last one.
    await using log = await CoreLog.open(config, 0);
    assertEquals(log.appendPut("d", "4"), 5);
    assertEquals(log.appendBatch([{ type: "put", key: "e", value: "5" }]), 6);
    await log.sync();
  }
  using r = await recoverPerCore(config.baseDir, { readOnly: true });
  assertEquals(asStrings(r.state), new Map([["b", "2"], ["d", "4"], ["e", "5"]]));
  assertEquals(r.offsets.get("src"), 7);
  assertEquals(r.watermark, 3);
  assertEquals(r.entriesReplayed, 6);
  assertEquals(r.walPositions.find((p) => p.coreId === 0)?.sequence, 6);
  const seen: number[] = [];
  for await (const e of mergeSegments(config.baseDir)) seen.push(e.sequence);
  assertEquals(seen, [1, 2, 3, 4, 5, 6]);
});

test("appendBatch refuses an empty batch, forbidden operations and a too large batch, claiming nothing", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path, { maxRecordBytes: 8192 });
  await using log = await CoreLog.open(config, 0);
  assertEquals(log.appendPut("a", "1"), 1);
  assertThrows(() => log.appendBatch([]), RangeError, "at least one");
  for (
    const op of [
      { type: "checkpoint", id: 1 },
      { type: "epochBarrier" },
      { type: "batch", ops: [] },
    ]
  ) {
    assertThrows(
      () => log.appendBatch([BATCH[0], op as unknown as BatchOperationInput]),
      TypeError,
      "a batch holds puts, deletes and commits",
    );
  }
  assertThrows(() => log.appendBatch(5 as unknown as BatchOperationInput[]), TypeError);
  assertThrows(
    () => log.appendBatch([{ type: "put", key: 5 as unknown as string, value: "v" }]),
    TypeError,
  );
  const big = new Uint8Array(5000);
  const e = assertThrows(
    () =>
      log.appendBatch([
        { type: "put", key: "x", value: big },
        { type: "put", key: "y", value: big },
      ]),
    PerCoreWalError,
  );
  assertEquals(e.code, "RecordTooLarge");
  // Nothing was claimed.
  assertEquals(log.appendPut("z", "2"), 2);
  await log.sync();
  assertEquals((await readCore(config)).length, 2);
});

test("CoreWalWriter.appendBatch: the Worker takes batches of two producers in sequence order", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path);
  {
    await using m = await PerCoreWalManager.open(config);
    const a = m.writer(0);
    const b = CoreWalWriter.attach(m.writerHandle(0));
    let last = 0;
    for (let i = 0; i < 200; i++) {
      const w = i % 2 === 0 ? a : b;
      if (i % 3 === 0) {
        w.appendPut(`p${i}`, "x");
      } else {
        last = w.appendBatch([
          { type: "put", key: `b${i}.0`, value: "y" },
          { type: "put", key: `b${i}.1`, value: "y" },
          { type: "delete", key: `p${i - 1}` },
        ]);
      }
    }
    assertEquals(await b.appendBatchAsync([{ type: "put", key: "async", value: "z" }]), last + 1);
    await a.waitDurable(last + 1);
    // Refused batches claim nothing.
    assertThrows(() => a.appendBatch([]), RangeError);
    assertThrows(
      () => a.appendBatch([{ type: "checkpoint", id: 1 } as unknown as BatchOperationInput]),
      TypeError,
    );
    await assertRejects(() => a.appendBatchAsync([]), RangeError);
    assertEquals(a.appendPut("after", "1"), Number(last + 2));
    await a.sync();
    b.close();
  }
  const entries = await readCore(config);
  assertEquals(entries.map((e) => e.sequence), entries.map((_, i) => Number(i + 1)));
  assertEquals(entries.length, 67 + 133 * 3 + 2);
  const keys = entries.filter((e) => e.operation.type === "put").map((e) =>
    str(asPut(e.operation).key)
  );
  assert(keys.includes("b1.0") && keys.includes("b1.1") && keys.includes("async"));
});

test("batches across segment rotations: reopen, wal verify and wal dump follow their sequences", async () => {
  await using dir = await tempDir();
  // Small segments: a batch record never spans two, so rotations fall between batches.
  const config = smallConfig(dir.path, { segmentSizeBytes: 64 * 1024 });
  const value = new Uint8Array(900).fill(7);
  const count = 200;
  {
    await using log = await CoreLog.open(config, 0);
    for (let i = 0; i < count; i++) {
      log.appendBatch([
        { type: "put", key: `k${i}.0`, value },
        { type: "put", key: `k${i}.1`, value },
        { type: "put", key: `k${i}.2`, value },
      ]);
    }
    await log.sync();
  }
  assert(listCoreSegments(config, 0).length > 3, "the batches span several segments");
  {
    await using log = await CoreLog.open(config, 0);
    assertEquals(log.appendPut("last", "1"), Number(count * 3 + 1));
    await log.sync();
  }
  const v = await walVerify(config.baseDir);
  assertEquals(v.code, 0, v.text);
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const dump = await runDeno(["run", "-A", cli, "dump", config.baseDir, "--json"]);
  assertEquals(dump.code, 0, dump.stderr);
  const lines = dump.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const seqs = lines.filter((l) => l.sequence !== undefined).map((l) => Number(l.sequence));
  assertEquals(seqs.length, count * 3 + 1);
  assertEquals(seqs, seqs.map((_, i) => i + 1));
});

test("a batch torn at every byte offset of its record is read all or nothing", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path, { writeMode: "buffered" });
  {
    await using log = await CoreLog.open(config, 0);
    log.appendPut("a", "1");
    await log.sync();
    log.appendBatch([
      { type: "put", key: "b", value: "22" },
      { type: "delete", key: "a" },
      { type: "commit", offsets: { src: 9 } },
    ]);
    await log.sync();
  }
  const path = listCoreSegments(config, 0)[0].path;
  const whole = await Deno.readFile(path);
  // Where the batch record lies: the reader's offset and length of its last entry.
  let start = -1;
  let end = -1;
  {
    using r = await PerCoreWalReader.open(path, { isLastSegment: true });
    for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
      if (x.entry.sequence === 4) [start, end] = [x.offset, x.offset + x.length];
    }
  }
  assert(start > 0 && end > start);
  const torn = `${dir.path}/torn.log`;
  for (let at = start; at <= end; at++) {
    // As a crash leaves it: the bytes from `at` on never reached the disk (zeros), or the file
    // was cut there.
    for (const cut of [false, true]) {
      const bytes = cut ? whole.slice(0, at) : whole.slice();
      if (!cut) bytes.fill(0, at);
      await Deno.writeFile(torn, bytes);
      const got: PerCoreWalEntry[] = [];
      using r = await PerCoreWalReader.open(torn, { isLastSegment: true });
      let x = await r.readNext();
      for (; x.kind === "entry"; x = await r.readNext()) got.push(x.entry);
      const what = `${cut ? "cut" : "zeroed"} at ${at}`;
      // Zeroing bytes that were zero (a commit's last byte) leaves the record whole.
      const whole_ = bytes.length >= end &&
        bytes.subarray(start, end).every((b, i) => b === whole[start + i]);
      assertEquals(got.length, whole_ ? 4 : 1, `${what}: ${got.length} entries`);
      // A partial batch is a crash tail either way: reported torn, or as the end when the batch
      // markers say its chain was never acknowledged (timing decides which marker covers it).
      if (whole_ || at === start) assertEquals(x.kind, "end", `${what}: ${x.kind}`);
      else assert(x.kind === "torn" || x.kind === "end", `${what}: ${x.kind}`);
    }
  }
  // Reopen cuts the torn batch whole: its sequences are taken again, none of it is replayed.
  const bytes = whole.slice();
  bytes.fill(0, start + 50);
  await Deno.writeFile(path, bytes);
  {
    using r = await recoverPerCore(config.baseDir, { readOnly: true });
    assertEquals(asStrings(r.state), new Map([["a", "1"]]));
    assertEquals(r.offsets.size, 0);
  }
  await using log = await CoreLog.open(config, 0);
  assertEquals(log.appendPut("c", "3"), 2);
});

test("a version 2 segment is read as before, and appending goes on in a version 3 segment", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path);
  {
    await using log = await CoreLog.open(config, 0);
    log.appendPut("a", "1");
    log.appendDelete("x");
    await log.sync();
  }
  // Make it a version 2 segment (it holds no atomic batch), header CRC recomputed.
  const [seg] = listCoreSegments(config, 0);
  const bytes = await Deno.readFile(seg.path);
  const v = new DataView(bytes.buffer);
  assertEquals(v.getUint16(8, true), 3);
  v.setUint16(8, 2, true);
  v.setUint32(60, crc32c(bytes, 0, 60), true);
  await Deno.writeFile(seg.path, bytes);
  {
    await using log = await CoreLog.open(config, 0);
    assertEquals(log.appendBatch([{ type: "put", key: "b", value: "2" }, BATCH[1]]), 4);
    await log.sync();
  }
  const segs = listCoreSegments(config, 0);
  assertEquals(segs.length >= 2, true, "a version 2 segment is never continued");
  using h = await PerCoreWalReader.open(segs[1].path, { isLastSegment: true });
  assertEquals(h.header?.version, 3);
  const entries = await readCore(config);
  assertEquals(entries.map((e) => e.operation.type), ["put", "delete", "put", "delete"]);
  assertEquals(entries.map((e) => e.sequence), [1, 2, 3, 4]);
});
