// The reader's three verdicts on damaged files: end (zeros or end of file), torn tail, and
// corruption. The damage is made to real segment files written by the engine.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import type { ReaderOptions, ReadResult } from "../src/read_result.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { scanSegment } from "../src/segment_probes.ts";
import { readCore, rng, smallConfig, tempDir } from "./_helpers.ts";

/**
 * Writes `n` records on the sync backend (no padding), two per batch, each batch acknowledged
 * before the next is submitted: every batch marker after a record claims it was acknowledged, so
 * damage before the last two records is provably corruption, not a crash tail. Returns the first
 * segment's path and record places.
 */
async function writeSegment(dir: string, n: number, options = {}) {
  const config = smallConfig(dir, { backend: "sync", ...options });
  const log = await CoreLog.open(config, 0);
  for (let i = 0; i < n; i++) {
    log.appendPut(`key-${i}`, new Uint8Array(20 + i).fill(i));
    if (i % 2 === 1) await log.sync();
  }
  await log.close();
  const path = config.segmentPath(0, 0);
  const records: { offset: number; length: number }[] = [];
  {
    using r = await PerCoreWalReader.open(path);
    for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
      records.push({ offset: x.offset, length: x.length });
    }
  }
  return { config, path, records, bytes: await Deno.readFile(path) };
}

async function verdict(
  path: string,
  isLastSegment = true,
): Promise<{ count: number; end: ReadResult }> {
  using r = await PerCoreWalReader.open(path, { isLastSegment });
  let count = 0;
  let x = await r.readNext();
  while (x.kind === "entry") {
    count++;
    x = await r.readNext();
  }
  return { count, end: x };
}

Deno.test("a clean segment ends at its last record, with the preallocated zeros counted", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 10);
  const { count, end } = await verdict(path);
  const last = records[9];
  assertEquals(count, 10);
  assertEquals(end, {
    kind: "end",
    offset: last.offset + last.length,
    preallocatedBytes: bytes.length - last.offset - last.length,
  });
  const stats = (await scanSegment(path)).stats;
  assertEquals([stats.entryCount, stats.firstSequence, stats.lastSequence, stats.validEndOffset], [
    10,
    1,
    10,
    last.offset + last.length,
  ]);
});

Deno.test("the last record torn at every byte offset (rest zero) is a torn tail at its start, never an entry", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 5);
  const last = records[4];
  for (let cut = last.offset; cut < last.offset + last.length; cut++) {
    const damaged = bytes.slice();
    damaged.fill(0, cut, last.offset + last.length);
    await Deno.writeFile(path, damaged);
    const { count, end } = await verdict(path);
    assertEquals(count, 4, `cut at ${cut}`);
    if (damaged.subarray(last.offset, cut).every((b) => b === 0)) {
      // Nothing of the record is left (its first bytes may be zero): the preallocated zeros.
      assertEquals(end.kind, "end", `cut at ${cut}`);
    } else {
      assertEquals([end.kind, end.offset], ["torn", last.offset], `cut at ${cut}`);
    }
  }
});

Deno.test("a file truncated at every byte offset of its last record ends in a torn tail", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 5);
  const last = records[4];
  for (let cut = last.offset + 1; cut < last.offset + last.length; cut++) {
    await Deno.writeFile(path, bytes.subarray(0, cut));
    const { count, end } = await verdict(path);
    assertEquals([count, end.kind, end.offset], [4, "torn", last.offset], `truncated at ${cut}`);
  }
  await Deno.writeFile(path, bytes.subarray(0, last.offset + last.length));
  assertEquals((await verdict(path)).end, {
    kind: "end",
    offset: last.offset + last.length,
    preallocatedBytes: 0,
  });
});

Deno.test("a flipped bit in a middle record is corruption at that record; later records are not returned", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 20);
  const r = rng(42);
  for (let trial = 0; trial < 50; trial++) {
    const victim = records[5 + Math.floor(r() * 10)];
    const bit = Math.floor(r() * victim.length * 8);
    const damaged = bytes.slice();
    damaged[victim.offset + (bit >> 3)] ^= 1 << (bit & 7);
    await Deno.writeFile(path, damaged);
    const { count, end } = await verdict(path);
    assertEquals(count, records.indexOf(victim), `bit ${bit}`);
    assertEquals([end.kind, end.offset], ["corrupted", victim.offset], `bit ${bit}`);
  }
});

Deno.test("iterating a corrupted segment throws PerCoreWalError naming the file and the offset", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 5);
  bytes[records[2].offset + 45] ^= 0xff;
  await Deno.writeFile(path, bytes);
  await using r = await PerCoreWalReader.open(path);
  const seen: number[] = [];
  const e = await assertRejects(async () => {
    for await (const entry of r) seen.push(entry.sequence);
  }, PerCoreWalError);
  assertEquals(seen, [1, 2]);
  assertEquals([e.code, e.offset, e.segment], ["ChecksumMismatch", records[2].offset, path]);
  assert(e.message.includes(path) && e.message.includes(`offset ${records[2].offset}`), e.message);
});

Deno.test("a zero hole followed by a valid record is corruption, not an end", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 10);
  const hole = records[4];
  bytes.fill(0, hole.offset, hole.offset + hole.length);
  await Deno.writeFile(path, bytes);
  const { count, end } = await verdict(path);
  assertEquals(count, 4);
  assertEquals([end.kind, end.offset], ["corrupted", hole.offset]);
});

Deno.test("a torn tail in a segment that is not the core's last is corruption", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 5);
  const last = records[4];
  bytes.fill(0, last.offset + 10, last.offset + last.length);
  await Deno.writeFile(path, bytes);
  assertEquals((await verdict(path, true)).end.kind, "torn");
  assertEquals((await verdict(path, false)).end.kind, "corrupted");
});

Deno.test("garbage after the last record (no valid record in it) is a torn tail", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 5);
  const end = records[4].offset + records[4].length;
  const r = rng(3);
  for (let i = end + 100; i < end + 600; i++) bytes[i] = Math.floor(r() * 256);
  await Deno.writeFile(path, bytes);
  assertEquals((await verdict(path)).end, {
    kind: "torn",
    offset: end,
    reason: "zeros followed by non-zero bytes",
  });
});

Deno.test("reopening cuts a torn tail and keeps every whole record; corruption refuses to open", async () => {
  await using dir = await tempDir();
  const { config, path, records, bytes } = await writeSegment(dir.path, 8);
  const last = records[7];
  const torn = bytes.slice();
  torn.fill(0, last.offset + 20, last.offset + last.length);
  await Deno.writeFile(path, torn);
  const log = await CoreLog.open(config, 0);
  assertEquals(log.sequence, 7);
  assertEquals(log.appendPut("again", "x"), 8);
  await log.close();
  assertEquals((await readCore(config)).map((e) => e.sequence), [1, 2, 3, 4, 5, 6, 7, 8]);
  assertEquals((await Deno.stat(path)).size, last.offset, "the torn record was cut off the file");

  const corrupt = (await Deno.readFile(path)).slice();
  corrupt[records[3].offset + 50] ^= 1;
  await Deno.writeFile(path, corrupt);
  const e = await assertRejects(() => CoreLog.open(config, 0), PerCoreWalError);
  assertEquals([e.code, e.segment, e.offset], ["ChecksumMismatch", path, records[3].offset]);
});

Deno.test("a reader opened on a missing file says SegmentNotFound", async () => {
  await using dir = await tempDir();
  const e = await assertRejects(
    () => PerCoreWalReader.open(`${dir.path}/nope.log`),
    PerCoreWalError,
  );
  assertEquals(e.code, "SegmentNotFound");
});

Deno.test("random damage of any kind never yields an entry that was not written, and never throws anything but PerCoreWalError", async () => {
  await using dir = await tempDir();
  const { path, bytes } = await writeSegment(dir.path, 30);
  const original = await readCore(smallConfig(dir.path, { backend: "sync" }));
  const seed = Number(Deno.env.get("SEED") ?? 1234);
  const r = rng(seed);
  for (let trial = 0; trial < 200; trial++) {
    const damaged = bytes.slice(0, 4096 + 3000);
    const kind = Math.floor(r() * 4);
    const at = 4096 + Math.floor(r() * 2900);
    if (kind === 0) damaged[at] ^= 1 << Math.floor(r() * 8);
    else if (kind === 1) damaged.fill(0, at, at + Math.floor(r() * 200));
    else if (kind === 2) { for (let i = 0; i < 20; i++) damaged[at + i] = Math.floor(r() * 256); }
    else damaged.copyWithin(at, 4096 + Math.floor(r() * 2000), 4096 + Math.floor(r() * 2000) + 100);
    const cut = kind === 3 ? damaged.length : 4096 + Math.floor(r() * 3000);
    await Deno.writeFile(path, damaged.subarray(0, cut));
    try {
      using reader = await PerCoreWalReader.open(path);
      let i = 0;
      for (let x = await reader.readNext(); x.kind === "entry"; x = await reader.readNext()) {
        assertEquals(
          x.entry,
          original[i++],
          `seed ${seed} trial ${trial}: entry ${i} differs from what was written`,
        );
      }
    } catch (e) {
      if (!(e instanceof PerCoreWalError)) throw new Error(`seed ${seed} trial ${trial}: ${e}`);
    }
  }
});

Deno.test("a valid record after damage is found even when its CRC starts with a zero byte", async () => {
  await using dir = await tempDir();
  const { path, records, bytes, i } = await withZeroCrcRecord(dir.path);
  bytes[records[i - 1].offset + 50] ^= 1;
  await Deno.writeFile(path, bytes);
  const { end } = await verdict(path);
  assertEquals([end.kind, end.offset], ["corrupted", records[i - 1].offset]);
  assert(
    end.kind === "corrupted" && end.reason.includes(`valid record at offset ${records[i].offset}`),
    JSON.stringify(end),
  );
});

Deno.test("a zero hole followed by a record whose CRC starts with a zero byte is corruption", async () => {
  await using dir = await tempDir();
  const { path, records, bytes, i } = await withZeroCrcRecord(dir.path);
  const hole = records[i - 1];
  bytes.fill(0, hole.offset, hole.offset + hole.length);
  await Deno.writeFile(path, bytes);
  const { end } = await verdict(path);
  assertEquals([end.kind, end.offset], ["corrupted", hole.offset]);
});

Deno.test("a segment cut inside its header block is a torn tail with no records", async () => {
  await using dir = await tempDir();
  const { path, bytes } = await writeSegment(dir.path, 3);
  await Deno.writeFile(path, bytes.subarray(0, 1000));
  assertEquals((await verdict(path)).end, {
    kind: "torn",
    offset: 1000,
    reason: "header block cut short",
  });
});

/**
 * A segment of 400 records in which some record (not among the first two, second of its batch,
 * batches acknowledged after it) has a CRC starting with 0x00.
 */
async function withZeroCrcRecord(dir: string) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const w = await writeSegment(`${dir}/${attempt}`, 400);
    const i = w.records.findIndex((r, k) =>
      k > 1 && k % 2 === 1 && k < 396 && w.bytes[r.offset] === 0
    );
    if (i >= 0) return { ...w, i };
  }
  throw new Error("no record with a CRC starting with 0x00 in 20 x 400 records");
}

Deno.test("liveEnd: the records end where the bytes stop validating, reported as end, unclassified", async () => {
  await using dir = await tempDir();
  const { path, records, bytes } = await writeSegment(dir.path, 20);
  const victim = records[12];
  const damaged = bytes.slice();
  damaged[victim.offset + 20] ^= 0x10; // a record being written, or damage: not told apart
  await Deno.writeFile(path, damaged);
  assertEquals((await verdict(path)).end.kind, "corrupted", "without liveEnd: classified");
  for (const [what, file] of [["a flipped bit", damaged], ["zeros", bytes]] as const) {
    await Deno.writeFile(path, file);
    using r = await PerCoreWalReader.open(path, { liveEnd: true });
    let count = 0;
    let x = await r.readNext();
    for (; x.kind === "entry"; x = await r.readNext()) count++;
    // Where the valid bytes end: the damaged record, or where the classifying reader ends.
    const at = what === "zeros" ? (await verdict(path)).end.offset : victim.offset;
    assertEquals(count, what === "zeros" ? 20 : 12, what);
    assertEquals(x, { kind: "end", offset: at, preallocatedBytes: 0 }, what);
  }
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => PerCoreWalReader.open(path, { liveEnd: "yes" as any }),
    TypeError,
    "liveEnd must be a boolean",
  );
});

Deno.test("a wrong reader option is a RangeError or TypeError, not an I/O error", async () => {
  await using dir = await tempDir();
  const { path } = await writeSegment(dir.path, 2);
  await assertRejects(() => PerCoreWalReader.open(path, { startSequence: 1.5 }), RangeError);
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => PerCoreWalReader.open(path, { expectedFirstSequence: "1" as any }),
    TypeError,
  );
});

Deno.test("skimToEnd ends where reading every entry ends, with the same stats, damaged or not", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path, { backend: "sync" });
  const log = await CoreLog.open(config, 0);
  for (let i = 0; i < 60; i++) {
    if (i % 7 === 3) {
      log.appendBatch([
        { type: "put", key: `b${i}`, value: "x".repeat(i) },
        { type: "delete", key: `b${i - 7}` },
      ]);
    } else log.appendPut(`key-${i}`, new Uint8Array(10 + i).fill(i));
    if (i % 3 === 2) await log.sync();
  }
  await log.close();
  const path = config.segmentPath(0, 0);
  const clean = await Deno.readFile(path);
  const { records } = await (async () => {
    const out: { offset: number; length: number }[] = [];
    using r = await PerCoreWalReader.open(path);
    for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
      if (x.length > 0) out.push({ offset: x.offset, length: x.length });
    }
    return { records: out };
  })();
  const r = rng(7);
  const variants: [string, Uint8Array][] = [["clean", clean]];
  for (let t = 0; t < 20; t++) {
    const victim = records[Math.floor(r() * records.length)];
    const damaged = clean.slice();
    const bit = Math.floor(r() * victim.length * 8);
    damaged[victim.offset + (bit >> 3)] ^= 1 << (bit & 7);
    variants.push([`bit ${bit} of the record at ${victim.offset}`, damaged]);
  }
  const last = records[records.length - 1];
  variants.push(["torn last record", clean.slice(0, last.offset + (last.length >> 1))]);
  for (const [what, bytes] of variants) {
    await Deno.writeFile(path, bytes);
    for (const options of [{}, { liveEnd: true }, { isLastSegment: false }]) {
      const read = await verdictAndStats(path, options);
      using skim = await PerCoreWalReader.open(path, options);
      const end = await skim.skimToEnd();
      assertEquals(end, read.end, `${what} ${JSON.stringify(options)}: the same end`);
      assertEquals(skim.stats, read.stats, `${what} ${JSON.stringify(options)}: the same stats`);
    }
  }
});

/** Reads every entry of `path`; the result that ends them and the reader's stats. */
async function verdictAndStats(path: string, options: ReaderOptions) {
  using r = await PerCoreWalReader.open(path, options);
  let x = await r.readNext();
  while (x.kind === "entry") x = await r.readNext();
  return { end: x, stats: r.stats };
}
