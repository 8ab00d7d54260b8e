// The streaming merge's iterator: it must behave as an async generator does (lazy start,
// early exit closes files, calls served in order, an error ends the stream).
import { assert, assertEquals } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { mergeSegments } from "../src/merge_stream.ts";
import type { PerCoreWalConfig } from "../src/config.ts";
import type { PerCoreWalEntry } from "../src/types.ts";
import { asPut, openSegmentFiles, readUntilDamage, smallConfig, str, tempDir } from "./_helpers.ts";

/** Two cores of `n` puts each (several 256 KiB segments), on the sync backend. */
async function writeWal(dir: string, n: number): Promise<PerCoreWalConfig> {
  const config = smallConfig(dir, { backend: "sync" }, 2);
  for (let c = 0; c < 2; c++) {
    const log = await CoreLog.open(config, c);
    for (let i = 0; i < n; i++) log.appendPut(`k-${c}-${i}`, new Uint8Array(100).fill(i & 255));
    await log.close();
  }
  return config;
}

const key = (e: PerCoreWalEntry) => str(asPut(e.operation).key);

Deno.test("mergeSegments() yields every entry of every core in (epoch, timestampNs, coreId, sequence) order", async () => {
  await using dir = await tempDir();
  const config = await writeWal(dir.path, 3000);
  const all: PerCoreWalEntry[] = [];
  for await (const e of mergeSegments(config)) all.push(e);
  assertEquals(all.length, 6000);
  for (let i = 1; i < all.length; i++) {
    const [a, b] = [all[i - 1], all[i]];
    assert(
      a.epoch < b.epoch || (a.epoch === b.epoch && (a.timestampNs < b.timestampNs ||
        (a.timestampNs === b.timestampNs && (a.coreId < b.coreId ||
          (a.coreId === b.coreId && a.sequence < b.sequence))))),
      `order at ${i}`,
    );
  }
  // Keys and values are copies that stay valid after the merge read on.
  assertEquals(all.filter((e) => e.coreId === 1).map(key).at(-1), "k-1-2999");
  assertEquals(asPut(all[0].operation).value[99], 0);
});

Deno.test("mergeSegments() stopped early by break closes its files, and is done afterwards", async () => {
  await using dir = await tempDir();
  const config = await writeWal(dir.path, 3000);
  const before = await openSegmentFiles(dir.path);
  assertEquals(before, 0);
  const stream = mergeSegments(config);
  let n = 0;
  for await (const _ of stream) {
    if (++n === 10) {
      assertEquals(await openSegmentFiles(dir.path), before + 2, "one segment open per core");
      break;
    }
  }
  assertEquals(n, 10);
  assertEquals(await openSegmentFiles(dir.path), before, "segments closed");
  assertEquals(await stream.next(), { value: undefined, done: true });
  assertEquals(await openSegmentFiles(dir.path), before, "segments closed");
});

Deno.test("mergeSegments() serves next() calls made without waiting in order", async () => {
  await using dir = await tempDir();
  const config = await writeWal(dir.path, 3000);
  const sequential: string[] = [];
  for await (const e of mergeSegments(config)) sequential.push(`${e.coreId}:${e.sequence}`);
  const stream = mergeSegments(config);
  const results = await Promise.all(Array.from({ length: 6002 }, () => stream.next()));
  assertEquals(results.filter((r) => r.done).length, 2);
  assertEquals(
    results.slice(0, 6000).map((r) => `${r.value!.coreId}:${r.value!.sequence}`),
    sequential,
  );
});

Deno.test("mergeSegments() rejects at a corrupted record, closes its files and ends", async () => {
  await using dir = await tempDir();
  const config = await writeWal(dir.path, 3000);
  // Flip a byte of a record in core 1's first segment (not its last: corruption, not torn).
  const path = config.segmentPath(1, 0);
  const bytes = await Deno.readFile(path);
  bytes[4096 + 10_000] ^= 0xff;
  await Deno.writeFile(path, bytes);
  const before = await openSegmentFiles(dir.path);
  assertEquals(before, 0);
  const n = await readUntilDamage(mergeSegments(config));
  assert(n > 0 && n < 6000, `${n} entries before the damage`);
  assertEquals(await openSegmentFiles(dir.path), before, "segments closed");
});
