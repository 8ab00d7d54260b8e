// A workload of `deno task bench:compare` repeated in one process: how far the first run, which
// bench:compare measures for the WAL, is from later runs of the same loop in the same process (V8
// has compiled it, the shared buffer's pages are mapped). Both sides repeat, each in its own
// process, alternating, as bench:compare does:
// - W1 (200,000 records of 128 bytes, sync() every 512, 8 in flight): the WAL (one io_uring core,
//   one manager for every repetition) against plain Deno's W1 loops, as bench:compare runs them
//   (writeSync + syncDataSync per batch, then async write + syncData with 8 in flight, each on a
//   new file) counting the better of the two in each repetition;
// - W3 (64 producers on one core, each awaiting its own record, 50,000 records) against plain
//   Deno's W2s loop (writeSync + syncDataSync per record, 5,000 records), the goal's baseline.
// The WAL side also counts the minor page faults of its process in each repetition.
// Usage: deno run -A bench/warmup.ts [--workload W1|W3] [--reps 4] [--runs 3]
import { parseArgs } from "node:util";
import { PerCoreWalConfig, PerCoreWalManager } from "../mod.ts";
import { groupCommit, KEYS } from "./_loops.ts";
import { Framer, PlainFile } from "./compare/plain.ts";
import { median } from "./compare/report.ts";
import { recordBytes } from "./compare/workloads.ts";

const BATCH = 512;
const IN_FLIGHT = 8;
const value = new Uint8Array(112).fill(0x5a);

/** Minor page faults of this process so far (field 10 of /proc/self/stat). */
function pageFaults(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}

/** One repetition's records/s and the page faults the process took meanwhile. */
interface Rep {
  rate: number;
  faults: number;
}

/** Each repetition of the workload's loop through the WAL. */
async function wal(dir: string, workload: string, reps: number): Promise<Rep[]> {
  const manager = await PerCoreWalManager.open(
    new PerCoreWalConfig(dir, 1, { backend: "io_uring" }),
  );
  try {
    // No pause after open(): the first repetition is what bench:compare measures (W1c for W1).
    const log = manager.writer(0);
    const out: Rep[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const f0 = pageFaults();
      const t0 = performance.now();
      let records: number;
      if (workload === "W3") {
        records = 50_000;
        await groupCommit(log, records, value);
      } else {
        records = 200_000;
        const pending: Promise<void>[] = [];
        for (let i = 0; i < records; i += BATCH) {
          const n = Math.min(BATCH, records - i);
          for (let k = 0; k < n; k++) log.appendPut(KEYS[k], value);
          pending.push(log.sync());
          if (pending.length >= IN_FLIGHT) await pending.shift();
        }
        await Promise.all(pending);
      }
      out.push({ rate: records / ((performance.now() - t0) / 1000), faults: pageFaults() - f0 });
    }
    return out;
  } finally {
    await manager.close();
  }
}

/**
 * Records/s of each repetition of plain Deno's loop: for W1 the better of its two loops, for W3
 * its baseline, W2s (writeSync + syncDataSync per record).
 */
async function plain(dir: string, workload: string, reps: number): Promise<number[]> {
  const rates: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    if (workload === "W3") {
      rates.push(plainLoop(`${dir}/w2s-${rep}.log`, 5_000, 1));
    } else {
      const sync = plainLoop(`${dir}/sync-${rep}.log`, 200_000, BATCH);
      rates.push(Math.max(sync, await plainAsync(`${dir}/async-${rep}.log`, 200_000)));
    }
  }
  return rates;
}

/** Records/s of `records` framed in batches of `batch`, each `writeSync` + `syncDataSync`. */
function plainLoop(path: string, records: number, batch: number): number {
  const file = new PlainFile(path);
  const f = new Framer(batch * recordBytes(128));
  try {
    const t0 = performance.now();
    for (let i = 0; i < records; i += batch) {
      const n = Math.min(batch, records - i);
      f.reset();
      for (let k = 0; k < n; k++) f.put(KEYS[(i + k) & 511], value);
      file.writeAllSync(f.buf.subarray(0, f.used));
      file.syncDataSync();
    }
    return records / ((performance.now() - t0) / 1000);
  } finally {
    file.close();
  }
}

/** Records/s of W1's async loop: write + syncData per batch, up to 8 syncData outstanding. */
async function plainAsync(path: string, records: number): Promise<number> {
  const file = new PlainFile(path);
  const f = new Framer(BATCH * recordBytes(128));
  try {
    const t0 = performance.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < records; i += BATCH) {
      const n = Math.min(BATCH, records - i);
      f.reset();
      for (let k = 0; k < n; k++) f.put(KEYS[(i + k) & 511], value);
      await file.writeAll(f.buf.subarray(0, f.used));
      pending.push(file.syncData());
      while (pending.length >= IN_FLIGHT) await pending.shift();
    }
    await Promise.all(pending);
    return records / ((performance.now() - t0) / 1000);
  } finally {
    file.close();
  }
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    workload: { type: "string", default: "W1" },
    reps: { type: "string", default: "4" },
    runs: { type: "string", default: "3" },
    child: { type: "string" },
    dir: { type: "string" },
  },
});
const reps = Number(values.reps);
if (!Number.isInteger(reps) || reps < 1) throw new RangeError(`--reps must be ≥ 1, got ${reps}`);
const workload = values.workload!;
if (workload !== "W1" && workload !== "W3") {
  throw new RangeError(`--workload must be W1 or W3, got ${workload}`);
}

if (values.child !== undefined) {
  const out = values.child === "wal"
    ? await wal(values.dir!, workload, reps)
    : (await plain(values.dir!, workload, reps)).map((rate) => ({ rate, faults: 0 }));
  console.log(JSON.stringify(out));
} else {
  const runs = Number(values.runs);
  const here = new URL(".", import.meta.url).pathname;
  Deno.mkdirSync(`${here}.data`, { recursive: true });
  const all: Record<string, Rep[][]> = { wal: [], plain: [] };
  for (let run = 0; run < runs; run++) {
    for (const side of ["wal", "plain"]) {
      const dir = await Deno.makeTempDir({ dir: `${here}.data`, prefix: "warmup-" });
      try {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            import.meta.filename!,
            "--child",
            side,
            "--dir",
            dir,
            "--reps",
            `${reps}`,
            "--workload",
            workload,
          ],
          stdout: "piped",
        }).output();
        if (!out.success) throw new Error(`${side} run failed (exit ${out.code})`);
        all[side].push(JSON.parse(new TextDecoder().decode(out.stdout)));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  }
  const fmt = (r: number) => r >= 1e6 ? `${(r / 1e6).toFixed(2)}M` : `${(r / 1e3).toFixed(1)}k`;

  const m = (side: string, rep: number) => median(all[side].map((r) => r[rep].rate));
  const faults = (rep: number) => median(all.wal.map((r) => r[rep].faults));
  const base = workload === "W3" ? "plain W2s" : "plain";
  console.log(`${workload}'s loop repeated in one process: medians of ${runs} runs, records/s`);
  console.log(
    `| repetition | wal-uring | ${base} | wal / ${base} | WAL process page faults |\n` +
      "|--:|--:|--:|--:|--:|",
  );
  for (let rep = 0; rep < reps; rep++) {
    const w = m("wal", rep), p = m("plain", rep);
    console.log(
      `| ${rep + 1} | ${fmt(w)} | ${fmt(p)} | ${(w / p).toFixed(2)}× | ${faults(rep)} |`,
    );
  }
}
