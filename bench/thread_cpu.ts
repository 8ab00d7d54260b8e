// CPU time per record of each thread: W6's append loop (appendPut only, chunks of 65,536 with an
// untimed sync() between) on a one-core manager, or W7's merge of an existing WAL. Thread CPU
// (schedstat, read through a shell: /proc needs broad permissions) is steadier than wall time on
// a shared machine.
// Usage:
//   deno run -A bench/thread_cpu.ts append [records] [io_uring|sync]
//   deno run -A bench/thread_cpu.ts w1 [records] [io_uring|sync]   (W1's loop: sync() every 512, 8 in flight)
//   deno run -A bench/thread_cpu.ts w3 [records] [io_uring|sync]   (W3: 64 producers, each awaiting its record)
//   deno run -A bench/thread_cpu.ts w2 [records] [io_uring|sync]   (W2: sync() every 512, awaited)
//   deno run -A bench/thread_cpu.ts w2s [records] [io_uring|sync]  (W2s: each record awaited, one producer)
//   deno run -A bench/thread_cpu.ts plain-w3 [records] (W3 through the competent plain-Deno group
//                                                  commit of bench:compare, for comparison)
//   deno run -A bench/thread_cpu.ts merge <dir>    (a WAL made by bench/compare/run.ts W7 setup)
// Each line of the appending modes ends with the process's RSS at the end. The appending modes
// start at once after open(), as a user does (the first segment's preparation and V8's compiling
// are in the figures), and first print open()'s own wall time and CPU by thread; `--settle-ms N`
// (anywhere in the arguments) waits N ms after open() instead, for the steady state,
// `--write-mode auto|direct|dsync|buffered` sets the option of that name, and `--in-flight N`
// lets W1 keep N sync()s outstanding instead of 8. Their last
// line gives the rounds (batches, each written with its fdatasync), the records per round, and how
// often the Worker and the producer were switched in per round (schedstat's count of the times a
// thread ran: its wake-ups): what an awaited record's CPU is made of.
import { mergeSegments, PerCoreWalConfig, PerCoreWalManager } from "../mod.ts";
import { groupCommit, KEYS } from "./_loops.ts";
import { threadCpu, threadSwitches } from "./_schedstat.ts";
import { PlainGroupCommit } from "./compare/plain.ts";
import { recordBytes } from "./compare/workloads.ts";

function report(
  label: string,
  records: number,
  before: Map<string, number>,
  after: Map<string, number>,
  per = "record",
) {
  const rows = [...after]
    .map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / records] as const)
    .filter(([, v]) => v >= 1)
    .sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, v]) => s + v, 0);
  console.log(
    `${label}; CPU per ${per}: ${rows.map(([k, v]) => `${k} ${v.toFixed(0)} ns`).join(", ")}; ` +
      `all threads ${total.toFixed(0)} ns`,
  );
}

/** The value of `--name N` or `--name=N`, if given. */
function flag(name: string): string | undefined {
  const arg = Deno.args.find((a) => a === name || a.startsWith(`${name}=`));
  if (arg === undefined) return undefined;
  return arg.includes("=") ? arg.split("=")[1] : Deno.args[Deno.args.indexOf(arg) + 1];
}
const settleMs = Number(flag("--settle-ms") ?? 0);
// W1's outstanding sync()s (8 in the comparison): more shows whether W1 is bound by the latency
// of its window of records in flight or by a thread's CPU.
const inFlight = Number(flag("--in-flight") ?? 8);
const writeMode = flag("--write-mode") as "auto" | "direct" | "dsync" | "buffered" | undefined;
const flags = ["--settle-ms", "--write-mode", "--in-flight"];
const positional = Deno.args.filter((a, i) =>
  !flags.some((f) => a === f || a.startsWith(`${f}=`)) && !flags.includes(Deno.args[i - 1])
);
const [mode, arg, backend] = positional;
if (["append", "w1", "w2", "w2s", "w3"].includes(mode)) {
  const records = Number(arg ?? 2_000_000);
  const dir = await Deno.makeTempDir({ prefix: "thread-cpu-" });
  const config = new PerCoreWalConfig(dir, 1, {
    backend: backend === "sync" ? "sync" : "io_uring",
    ...(writeMode === undefined ? {} : { writeMode }),
  });
  const cpuBeforeOpen = await threadCpu();
  const tOpen = performance.now();
  const manager = await PerCoreWalManager.open(config);
  const openMs = performance.now() - tOpen;
  report(`open(): ${openMs.toFixed(1)} ms wall`, 1, cpuBeforeOpen, await threadCpu(), "open()");
  try {
    if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
    const log = manager.writer(0);
    const value = new Uint8Array(112).fill(0x5a);
    const before = await threadCpu();
    const switchesBefore = await threadSwitches();
    const batchesBefore = manager.metrics()[0].batches;
    let timedMs = 0;
    if (mode === "w1") {
      const t0 = performance.now();
      const pending: Promise<void>[] = [];
      // Records/s of each stretch of 20,480 records: how the rate climbs while V8 compiles.
      const stretches: string[] = [];
      let t = t0;
      for (let i = 0; i < records; i += 512) {
        for (let k = 0; k < 512; k++) log.appendPut(KEYS[k], value);
        pending.push(log.sync());
        if (pending.length >= inFlight) await pending.shift();
        if (i % 20_480 === 19_968 && stretches.length < 10) {
          const now = performance.now();
          stretches.push((20_480 / (now - t) / 1000).toFixed(2));
          t = now;
        }
      }
      await Promise.all(pending);
      timedMs = performance.now() - t0;
      console.log(`w1: first stretches of 20,480 records, M records/s: ${stretches.join(" ")}`);
    }
    if (mode === "w2") {
      const t0 = performance.now();
      for (let i = 0; i < records; i += 512) {
        for (let k = 0; k < 512; k++) log.appendPut(KEYS[k], value);
        await log.sync();
      }
      timedMs = performance.now() - t0;
    }
    if (mode === "w2s") {
      const t0 = performance.now();
      for (let i = 0; i < records; i++) await log.waitDurable(log.appendPut(KEYS[i & 511], value));
      timedMs = performance.now() - t0;
    }
    if (mode === "w3") {
      const t0 = performance.now();
      await groupCommit(log, records, value);
      timedMs = performance.now() - t0;
    }
    for (let i = mode === "append" ? 0 : records; i < records;) {
      const n = Math.min(65_536, records - i);
      const t0 = performance.now();
      for (let k = 0; k < n; k++) log.appendPut(KEYS[(i + k) & 511], value);
      timedMs += performance.now() - t0;
      i += n;
      await log.sync();
    }
    const after = await threadCpu();
    report(
      `${mode} (${manager.backend}, ${manager.metrics()[0].writeMode}): ${
        (timedMs * 1e6 / records).toFixed(0)
      } ns wall per record ` +
        `(${(records / timedMs / 1000).toFixed(2)}M/s), process RSS ` +
        `${(Deno.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
      records,
      before,
      after,
    );
    // Rounds and wake-ups: what the CPU per record is made of in the awaiting modes. A round is
    // a batch written with its fdatasync (or, with writeMode "dsync", an O_DSYNC write).
    const rounds = Math.max(1, manager.metrics()[0].batches - batchesBefore);
    const switches = await threadSwitches();
    const woke = (prefix: string) => {
      const e = [...switches].find(([k]) => k.startsWith(prefix));
      return e === undefined ? 0 : (e[1] - (switchesBefore.get(e[0]) ?? 0)) / rounds;
    };
    console.log(
      `  ${rounds} rounds (${(records / rounds).toFixed(1)} records each); switched in per ` +
        `round: Worker ${woke("worker-").toFixed(2)}, producer ${
          woke(`deno/${Deno.pid}`).toFixed(2)
        }`,
    );
  } finally {
    await manager.close();
    await Deno.remove(dir, { recursive: true });
  }
} else if (mode === "plain-w3") {
  const records = Number(arg ?? 50_000);
  const dir = await Deno.makeTempDir({ prefix: "thread-cpu-" });
  const log = new PlainGroupCommit(`${dir}/plain.log`, 64 * recordBytes(128));
  try {
    const value = new Uint8Array(112).fill(0x5a);
    const before = await threadCpu();
    const t0 = performance.now();
    let next = 0;
    const producer = async () => {
      while (next < records) await log.append(KEYS[next++ & 511], value);
    };
    await Promise.all(Array.from({ length: 64 }, producer));
    const timedMs = performance.now() - t0;
    report(
      `plain-w3 (Deno.FsFile group commit): ${(timedMs * 1e6 / records).toFixed(0)} ns wall ` +
        `per record (${(records / timedMs / 1000).toFixed(3)}M/s)`,
      records,
      before,
      await threadCpu(),
    );
  } finally {
    log.close();
    await Deno.remove(dir, { recursive: true });
  }
} else if (mode === "merge" && arg !== undefined) {
  // `merge <dir> [runs]`: repeated in one process (the third argument is the count), the later
  // runs show the JIT-warm cost, and the least of several is the steadiest figure on a shared
  // machine.
  for (let run = 0; run < Number(backend ?? 1); run++) {
    const before = await threadCpu();
    const t0 = performance.now();
    let n = 0;
    for await (const _ of mergeSegments(arg)) n++;
    const ms = performance.now() - t0;
    const after = await threadCpu();
    report(
      `merge: ${n} entries, ${(ms * 1e6 / n).toFixed(0)} ns wall per entry (${
        (n / ms / 1000).toFixed(2)
      }M/s)`,
      n,
      before,
      after,
    );
  }
} else {
  throw new TypeError(
    "usage: thread_cpu.ts append|w1|w2|w2s|w3 [records] [io_uring|sync] [--settle-ms N] " +
      "[--write-mode M] | " +
      "plain-w3 [records] | merge <dir>",
  );
}
