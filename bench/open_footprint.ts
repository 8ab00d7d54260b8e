// What a fresh manager costs before and while it is used: open() and close() times and the bytes
// the WAL holds on disk (allocated blocks, `stat` blocks × 512), for a fresh directory each run.
// A measuring script, not a test; docs/PERFORMANCE.md ("segment life cycle") quotes it.
//
// Usage: deno run -A bench/open_footprint.ts [--runs 5] [--cores 2] [--records 2000]
//        [--dir bench/.data/open_footprint] [--options '{"segmentSizeBytes":1048576}']
import { parseArgs } from "@std/cli/parse-args";
import { PerCoreWalManager, type WalOpenOptions } from "../mod.ts";

const args = parseArgs(Deno.args, {
  string: ["runs", "cores", "records", "dir", "options"],
  default: { runs: "5", cores: "2", records: "2000", dir: "bench/.data/open_footprint" },
});
const runs = Number(args.runs);
const cores = Number(args.cores);
const records = Number(args.records);
const extra = args.options === undefined ? {} : JSON.parse(args.options) as WalOpenOptions;

/** Bytes allocated to the files under `dir`. */
function allocated(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) n += allocated(p);
    else if (e.isFile) n += (Deno.statSync(p).blocks ?? 0) * 512;
  }
  return n;
}

const MiB = 1024 * 1024;
const fmt = (ms: number) => ms.toFixed(1).padStart(7);
console.log(`fresh ${cores}-core manager, ${records} records of 128 bytes, ${runs} runs`);
console.log("run   open ms  disk after open MiB  disk with records MiB  close ms");
const opens: number[] = [];
for (let run = 0; run < runs; run++) {
  const dir = `${args.dir}/${run}`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const t0 = performance.now();
  const m = await PerCoreWalManager.open(dir, { cores, ...extra });
  const openMs = performance.now() - t0;
  opens.push(openMs);
  const afterOpen = allocated(dir);
  const value = new Uint8Array(100);
  for (let i = 0; i < records; i++) m.writer(i % cores).appendPut(`k-${i}`, value);
  for (let c = 0; c < cores; c++) await m.writer(c).sync();
  const withRecords = allocated(dir);
  const t1 = performance.now();
  await m.close();
  const closeMs = performance.now() - t1;
  console.log(
    `${String(run).padStart(3)}  ${fmt(openMs)}  ${(afterOpen / MiB).toFixed(2).padStart(19)}  ` +
      `${(withRecords / MiB).toFixed(2).padStart(21)}  ${fmt(closeMs)}`,
  );
  await Deno.remove(dir, { recursive: true });
}
opens.sort((a, b) => a - b);
console.log(`open() median ${opens[Math.floor(opens.length / 2)].toFixed(1)} ms`);
