// Hostile cases of PerCoreWalReader.skimToEnd: from every record boundary (batch markers
// included), after some entries were read (mid atomic batch), and on a file cut at every offset
// of its tail, the skim must end where reading ends, with the same stats.
import { assert, assertEquals } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import type { ReaderOptions } from "../src/read_result.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { smallConfig, tempDir } from "./_helpers.ts";

async function writeMixed(dir: string) {
  const config = smallConfig(dir, { backend: "sync" });
  const log = await CoreLog.open(config, 0);
  for (let i = 0; i < 24; i++) {
    if (i % 4 === 1) {
      log.appendBatch([
        { type: "put", key: `b${i}`, value: "x".repeat(i) },
        { type: "delete", key: `b${i - 4}` },
        { type: "put", key: `c${i}`, value: "y" },
      ]);
    } else log.appendPut(`key-${i}`, new Uint8Array(5 + i).fill(i));
    if (i % 3 === 2) await log.sync();
  }
  await log.close();
  const path = config.segmentPath(0, 0);
  const entries: { offset: number; length: number; sequence: number; batchLast?: number }[] = [];
  {
    using r = await PerCoreWalReader.open(path);
    for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
      entries.push({
        offset: x.offset,
        length: x.length,
        sequence: x.entry.sequence,
        batchLast: x.entry.batchLast,
      });
    }
  }
  return { path, entries };
}

async function readAll(path: string, options: ReaderOptions, skipFirst = 0) {
  using r = await PerCoreWalReader.open(path, options);
  for (let i = 0; i < skipFirst; i++) await r.readNext();
  let x = await r.readNext();
  while (x.kind === "entry") x = await r.readNext();
  return { end: x, stats: r.stats };
}

async function skimAll(path: string, options: ReaderOptions, skipFirst = 0) {
  using r = await PerCoreWalReader.open(path, options);
  for (let i = 0; i < skipFirst; i++) await r.readNext();
  const end = await r.skimToEnd();
  return { end, stats: r.stats };
}

Deno.test("skimToEnd from every record boundary (markers included) ends as reading does", async () => {
  await using dir = await tempDir();
  const { path, entries } = await writeMixed(dir.path);
  const starts: { offset: number; sequence: number }[] = [];
  let prevEnd = 4096;
  for (const e of entries) {
    // An atomic batch's later entries share its record: started at its first.
    if (starts.at(-1)?.offset === e.offset) continue;
    // Before the marker that precedes the record (if any), and at the record itself.
    starts.push({ offset: prevEnd, sequence: e.sequence });
    starts.push({ offset: e.offset, sequence: e.sequence });
    if (e.length > 0) prevEnd = e.offset + e.length;
  }
  assert(starts.some((s, i) => i % 2 === 0 && s.offset < starts[i + 1].offset), "markers seen");
  for (const s of starts) {
    for (const extra of [{}, { liveEnd: true }, { isLastSegment: false }]) {
      const options = { startOffset: s.offset, startSequence: s.sequence, ...extra };
      const read = await readAll(path, options);
      const skim = await skimAll(path, options);
      assertEquals(skim, read, JSON.stringify(options));
    }
  }
});

Deno.test("skimToEnd after some entries were read (mid atomic batch) ends as reading does", async () => {
  await using dir = await tempDir();
  const { path, entries } = await writeMixed(dir.path);
  for (let k = 0; k <= entries.length; k++) {
    for (const options of [{}, { liveEnd: true }]) {
      const read = await readAll(path, options, k);
      const skim = await skimAll(path, options, k);
      assertEquals(skim, read, `after ${k} entries ${JSON.stringify(options)}`);
    }
  }
});

Deno.test("skimToEnd on a file cut at every offset of its last records ends as reading does", async () => {
  await using dir = await tempDir();
  const { path, entries } = await writeMixed(dir.path);
  const whole = await Deno.readFile(path);
  const last = entries.at(-1)!;
  const from = entries[entries.length - 8].offset - 50;
  for (let cut = from; cut <= last.offset + last.length + 1; cut++) {
    await Deno.writeFile(path, whole.slice(0, cut));
    for (const options of [{}, { liveEnd: true }, { isLastSegment: false }]) {
      const read = await readAll(path, options);
      const skim = await skimAll(path, options);
      assertEquals(skim, read, `cut at ${cut} ${JSON.stringify(options)}`);
    }
  }
});
