// Decoded keys and values are views of copies the reader makes once per window of its buffer:
// they must stay exactly what was written after the reader refilled its buffer many times.
import { assert, assertEquals, assertRejects } from "@std/assert";
import type { PerCoreWalConfig } from "../src/config.ts";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { mergeSegments } from "../src/merge_stream.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import type { PerCoreWalEntry } from "../src/types.ts";
import { openSegmentFiles, readUntilDamage, rng, smallConfig, str, tempDir } from "./_helpers.ts";

/** Two cores of `n` puts of 150 bytes in 4 MiB segments: each read ahead has one in flight. */
async function writeWal(dir: string, n: number): Promise<PerCoreWalConfig> {
  const config = smallConfig(dir, { backend: "sync", segmentSizeBytes: 4 << 20 }, 2);
  for (let c = 0; c < 2; c++) {
    const log = await CoreLog.open(config, c);
    for (let i = 0; i < n; i++) log.appendPut(`k-${c}-${i}`, new Uint8Array(150).fill(i & 255));
    await log.close();
  }
  return config;
}

/** The key of a put. */
const key = (e: PerCoreWalEntry) => e.operation.type === "put" ? str(e.operation.key) : "";

/** The value of record `i` of core `c`: its length varies (empty, small, above 4 KiB). */
function valueOf(c: number, i: number, size: number): Uint8Array {
  const v = new Uint8Array(size);
  for (let j = 0; j < size; j++) v[j] = (c * 131 + i * 7 + j) & 255;
  return v;
}

Deno.test("merged keys and values stay intact after the readers moved on through several MiB", async () => {
  await using dir = await tempDir();
  // 4 MiB segments: the reader's 1 MiB buffer is refilled inside a segment, with records
  // straddling each refill.
  const config = smallConfig(dir.path, { backend: "sync", segmentSizeBytes: 4 << 20 }, 2);
  const seed = 7;
  const random = rng(seed);
  const sizes: number[][] = [[], []];
  const deleted: boolean[][] = [[], []];
  for (let c = 0; c < 2; c++) {
    const log = await CoreLog.open(config, c);
    for (let i = 0; i < 30_000; i++) {
      const r = random();
      if (r < 0.05) {
        log.appendDelete(`d-${c}-${i}`);
        deleted[c].push(true);
        sizes[c].push(0);
        continue;
      }
      const size = r < 0.1
        ? 0
        : r < 0.12
        ? 4096 + Math.floor(random() * 8000)
        : Math.floor(r * 300);
      log.appendPut(`k-${c}-${i}`, valueOf(c, i, size));
      deleted[c].push(false);
      sizes[c].push(size);
    }
    await log.close();
  }
  const all: PerCoreWalEntry[] = [];
  for await (const e of mergeSegments(config)) all.push(e);
  assertEquals(all.length, 60_000, `seed ${seed}`);
  assertEquals(await openSegmentFiles(dir.path), 0, "segments closed at the end");
  for (const e of all) {
    const c = e.coreId;
    const i = Number(e.sequence) - 1;
    const op = e.operation;
    if (deleted[c][i]) {
      assertEquals(op.type, "delete", `seed ${seed}, core ${c} record ${i}`);
      if (op.type === "delete") assertEquals(str(op.key), `d-${c}-${i}`);
      continue;
    }
    assertEquals(op.type, "put", `seed ${seed}, core ${c} record ${i}`);
    if (op.type !== "put") continue;
    assertEquals(str(op.key), `k-${c}-${i}`, `seed ${seed}`);
    assertEquals(op.value, valueOf(c, i, sizes[c][i]), `seed ${seed}, core ${c} record ${i}`);
  }
});

Deno.test("mergeSegments() stopped early while reading ahead closes its files once return() resolves", async () => {
  await using dir = await tempDir();
  const config = await writeWal(dir.path, 20_000);
  const stream = mergeSegments(config);
  let n = 0;
  for await (const _ of stream) {
    if (++n < 10) continue;
    // One segment per core, and at times the next one, opened to tell whether it was started.
    const open = await openSegmentFiles(dir.path);
    assert(open >= 2 && open <= 4, `${open} segment files open while reading two cores`);
    break;
  }
  assertEquals(n, 10);
  assertEquals(await openSegmentFiles(dir.path), 0, "segments closed");
  assertEquals(await stream.next(), { value: undefined, done: true });
});

Deno.test("mergeSegments() rejects at a corrupted record past the first read, and closes its files", async () => {
  await using dir = await tempDir();
  const config = await writeWal(dir.path, 40_000);
  // Core 1's first segment is full (not its last): damage 2 MiB in is corruption.
  const path = config.segmentPath(1, 0);
  const bytes = await Deno.readFile(path);
  bytes[2 << 20] ^= 0xff;
  await Deno.writeFile(path, bytes);
  const n = await readUntilDamage(mergeSegments(config));
  assert(n > 20_000 && n < 80_000, `${n} entries before the damage`);
  assertEquals(await openSegmentFiles(dir.path), 0, "segments closed");
});

Deno.test("a reader closed while it waits for its read ahead rejects with Closed; the next reader reads every record", async () => {
  await using dir = await tempDir();
  const config = await writeWal(dir.path, 20_000);
  const path = config.segmentPath(0, 0);
  const entries: PerCoreWalEntry[] = [];
  const offsets: number[] = [];
  const lengths: number[] = [];
  const r = await PerCoreWalReader.open(path, { readAhead: true });
  // The first read (and the read ahead after it), then every entry already in the buffer.
  assertEquals((await r.readEntries(entries, offsets, lengths, 1)).count, 1);
  const buffered = r.readBufferedEntries(entries, offsets, lengths, 1_000_000);
  assert(buffered > 1000 && buffered < 19_999, `${buffered} entries in the first read`);
  const waiting = r.readEntries(entries, offsets, lengths, 10);
  r.close();
  const err = await assertRejects(() => waiting, PerCoreWalError);
  assertEquals(err.code, "Closed", err.message);
  // The buffers the closed reader gave up serve the next reader: its records are intact.
  await using again = await PerCoreWalReader.open(path, { readAhead: true });
  let n = 0;
  for await (const e of again) {
    assertEquals(key(e), `k-0-${n}`);
    n++;
  }
  assertEquals(n, 20_000);
});
