// One system on one workload, in its own process (so RSS and JIT state are its own). Started by
// bench/compare.ts; prints one JSON line (a RunResult) on stdout.
// Usage: deno run ... bench/compare/run.ts <workload> <system> <dir> [--quick]
import { PerCoreWalConfig, PerCoreWalManager, recoverPerCore } from "../../mod.ts";
import { CoreLog } from "../../src/core_log.ts";
import { mergeSegments } from "../../src/merge_stream.ts";
import { Framer, PlainFile, SqliteLog } from "./plain.ts";
import { recordBytes, type RunResult, type Workload, workloads } from "./workloads.ts";
import { processCpu } from "../_schedstat.ts";

const [wid, system, dir] = Deno.args;
const quick = Deno.args.includes("--quick");
const w: Workload | undefined = workloads(quick).find((x) => x.id === wid);
if (w === undefined || system === undefined || dir === undefined) {
  throw new TypeError(`usage: run.ts <workload> <system> <dir> [--quick], got ${Deno.args}`);
}
const REC = recordBytes(w.payloadBytes);
const keys = Array.from(
  { length: 512 },
  (_, i) => new TextEncoder().encode(`key-${String(i).padStart(12, "0")}`),
);
const value = new Uint8Array(w.payloadBytes - 16).fill(0x5a);
const now = () => performance.now();

/** What the WAL rows need from a log: the manager's writer and the engine share it. */
interface Log {
  appendPut(key: Uint8Array, value: Uint8Array): number;
  sync(): Promise<void>;
  waitDurable(sequence: number): Promise<void>;
}

interface Measured {
  records: number;
  seconds: number;
  lat?: number[];
  backend: string;
  note?: string;
  cpuNsPerRecord?: number;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function peakRss(): Promise<number> {
  // /proc needs broad read permissions; a shell reads it instead.
  const out = await new Deno.Command("sh", {
    args: ["-c", `grep VmHWM /proc/${Deno.pid}/status`],
    stdout: "piped",
  }).output();
  const m = /(\d+)\s*kB/.exec(new TextDecoder().decode(out.stdout));
  return m === null ? 0 : Number(m[1]) * 1024;
}

const settle = () => new Promise((r) => setTimeout(r, 1500));

// --- the WAL (manager or engine): one loop per workload shape ---------------------------------

/** Batches of `w.batch` appends, each followed by sync(), at most `w.inFlight` outstanding. */
async function walBatches(logs: Log[], records: number, lat: number[]): Promise<void> {
  const pending: Promise<void>[] = [];
  let i = 0;
  while (i < records) {
    const n = Math.min(w!.batch, records - i);
    for (const log of logs) {
      for (let k = 0; k < n; k++) log.appendPut(keys[(i + k) & 511], value);
    }
    i += n;
    for (const log of logs) {
      const t0 = now();
      pending.push(log.sync().then(() => void lat.push((now() - t0) * 1000)));
    }
    while (pending.length >= w!.inFlight * logs.length) await pending.shift();
  }
  await Promise.all(pending);
}

async function walSingle(log: Log, records: number, lat: number[]): Promise<void> {
  for (let i = 0; i < records; i++) {
    const t0 = now();
    await log.waitDurable(log.appendPut(keys[i & 511], value));
    lat.push((now() - t0) * 1000);
  }
}

async function walGroup(log: Log, records: number, lat: number[]): Promise<void> {
  let next = 0;
  const producer = async () => {
    while (next < records) {
      const i = next++;
      const t0 = now();
      await log.waitDurable(log.appendPut(keys[i & 511], value));
      lat.push((now() - t0) * 1000);
    }
  };
  await Promise.all(Array.from({ length: w!.producers }, producer));
}

/** W6: appends only; a sync() between chunks (not timed) keeps below maxPendingBytes. */
async function walAppendOnly(log: Log, records: number): Promise<number> {
  let timed = 0;
  for (let i = 0; i < records;) {
    const n = Math.min(w!.batch, records - i);
    const t0 = now();
    for (let k = 0; k < n; k++) log.appendPut(keys[(i + k) & 511], value);
    timed += now() - t0;
    i += n;
    await log.sync();
  }
  return timed / 1000;
}

async function runLogs(logs: Log[]): Promise<{ seconds: number; lat: number[] }> {
  const lat: number[] = [];
  const records = w!.records;
  if (w!.id === "W6") return { seconds: await walAppendOnly(logs[0], records), lat };
  const t0 = now();
  if (w!.producers > 1) await walGroup(logs[0], records, lat);
  else if (w!.batch === 1) await walSingle(logs[0], records, lat);
  else await walBatches(logs, records, lat);
  return { seconds: (now() - t0) / 1000, lat };
}

async function runManager(backend: "io_uring" | "sync"): Promise<Measured> {
  const config = new PerCoreWalConfig(dir, w!.cores, { backend });
  const manager = await PerCoreWalManager.open(config);
  try {
    await settle(); // the background zero-fill of each core's next segment
    const logs = Array.from({ length: w!.cores }, (_, c) => manager.writer(c));
    const cpu0 = await processCpu();
    const { seconds, lat } = await runLogs(logs);
    const records = w!.records * w!.cores;
    // W6 asks for the cost per record wherever it is computed: the core Worker's part too.
    const cpuNsPerRecord = w!.id === "W6" ? (await processCpu() - cpu0) / records : undefined;
    return { records, seconds, lat, backend: manager.backend, cpuNsPerRecord };
  } finally {
    await manager.close();
  }
}

async function runEngine(): Promise<Measured> {
  const log = await CoreLog.open(new PerCoreWalConfig(dir, 1, { backend: "io_uring" }), 0);
  try {
    await settle();
    const { seconds, lat } = await runLogs([log]);
    return { records: w!.records, seconds, lat, backend: `CoreLog ${log.backend}` };
  } finally {
    await log.close();
  }
}

// --- plain Deno ---------------------------------------------------------------------------------

async function runPlain(): Promise<Measured> {
  const records = w!.records;
  const batch = w!.id === "W6" ? 512 : w!.batch;
  const files = Array.from({ length: w!.cores }, (_, c) => new PlainFile(`${dir}/plain-${c}.log`));
  const framers = files.map(() => new Framer(batch * REC));
  try {
    // writeSync + syncDataSync per batch (W6: no sync), one file after the other; W3 (one record
    // per sync, in turn) is W2s there, so only its async variant runs.
    const syncLat: number[] = [];
    let t0 = now();
    for (let i = 0; i < records && w!.producers === 1;) {
      const n = Math.min(batch, records - i);
      for (let c = 0; c < files.length; c++) {
        const t1 = now();
        const f = framers[c];
        f.reset();
        for (let k = 0; k < n; k++) f.put(keys[(i + k) & 511], value);
        files[c].writeAllSync(f.buf.subarray(0, f.used));
        if (w!.id !== "W6") files[c].syncDataSync();
        syncLat.push((now() - t1) * 1000);
      }
      i += n;
    }
    const syncSeconds = (now() - t0) / 1000;
    if (w!.inFlight === 1 && w!.producers === 1 && w!.cores === 1) {
      return { records, seconds: syncSeconds, lat: syncLat, backend: "Deno.FsFile writeSync" };
    }
    // The async variant: write + syncData; pipelined (up to inFlight syncData per file), or, for
    // W3, 64 producers each awaiting write + syncData of its own record.
    const asyncLat: number[] = [];
    t0 = now();
    if (w!.producers > 1) {
      let next = 0;
      const producer = async () => {
        const f = new Framer(REC);
        while (next < records) {
          next++;
          const t1 = now();
          f.reset();
          f.put(keys[next & 511], value);
          await files[0].writeAll(f.buf.slice(0, f.used));
          await files[0].syncData();
          asyncLat.push((now() - t1) * 1000);
        }
      };
      await Promise.all(Array.from({ length: w!.producers }, producer));
    } else {
      await Promise.all(files.map(async (file) => {
        const f = new Framer(batch * REC);
        const pending: Promise<void>[] = [];
        for (let i = 0; i < records;) {
          const n = Math.min(batch, records - i);
          const t1 = now();
          f.reset();
          for (let k = 0; k < n; k++) f.put(keys[(i + k) & 511], value);
          await file.writeAll(f.buf.subarray(0, f.used));
          pending.push(file.syncData().then(() => void asyncLat.push((now() - t1) * 1000)));
          while (pending.length >= w!.inFlight) await pending.shift();
          i += n;
        }
        await Promise.all(pending);
      }));
    }
    const asyncSeconds = (now() - t0) / 1000;
    if (w!.producers > 1) {
      const backend = "Deno.FsFile async write, 64 producers";
      return { records, seconds: asyncSeconds, lat: asyncLat, backend };
    }
    const total = records * files.length;
    const rates = `writeSync ${Math.round(total / syncSeconds)}/s, async ${
      Math.round(total / asyncSeconds)
    }/s`;
    return asyncSeconds < syncSeconds
      ? {
        records: total,
        seconds: asyncSeconds,
        lat: asyncLat,
        backend: "Deno.FsFile async write",
        note: rates,
      }
      : {
        records: total,
        seconds: syncSeconds,
        lat: syncLat,
        backend: "Deno.FsFile writeSync",
        note: rates,
      };
  } finally {
    for (const f of files) f.close();
  }
}

// --- node:sqlite --------------------------------------------------------------------------------

function runSqlite(): Measured {
  const db = new SqliteLog(`${dir}/sqlite.db`);
  const records = w!.records;
  const lat: number[] = [];
  try {
    const t0 = now();
    if (w!.id === "W6") {
      db.begin();
      for (let i = 0; i < records; i++) db.insert(keys[i & 511], value);
      const seconds = (now() - t0) / 1000;
      db.commit();
      return { records, seconds, backend: "node:sqlite", note: "inserts in one transaction" };
    }
    for (let i = 0; i < records;) {
      const n = Math.min(w!.batch, records - i);
      const t1 = now();
      if (n === 1) db.insert(keys[i & 511], value); // autocommit: one transaction
      else {
        db.begin();
        for (let k = 0; k < n; k++) db.insert(keys[(i + k) & 511], value);
        db.commit();
      }
      lat.push((now() - t1) * 1000);
      i += n;
    }
    return { records, seconds: (now() - t0) / 1000, lat, backend: "node:sqlite" };
  } finally {
    db.close();
  }
}

// --- W7: merge and recovery of an existing WAL --------------------------------------------------

async function runSetup(): Promise<Measured> {
  const manager = await PerCoreWalManager.open(new PerCoreWalConfig(dir, w!.cores));
  try {
    const logs = Array.from({ length: w!.cores }, (_, c) => manager.writer(c));
    const t0 = now();
    await walBatches(logs, w!.records, []);
    return {
      records: w!.records * w!.cores,
      seconds: (now() - t0) / 1000,
      backend: manager.backend,
    };
  } finally {
    await manager.close();
  }
}

async function runMerge(): Promise<Measured> {
  let n = 0;
  const t0 = now();
  for await (const _ of mergeSegments(dir)) n++;
  return { records: n, seconds: (now() - t0) / 1000, backend: "mergeSegments (streaming)" };
}

async function runRecovery(): Promise<Measured> {
  const t0 = now();
  using r = await recoverPerCore(dir, { readOnly: true });
  return {
    records: r.entriesReplayed,
    seconds: (now() - t0) / 1000,
    backend: "recoverPerCore (readOnly)",
  };
}

const measured: Measured = await (() => {
  switch (system) {
    case "wal-uring":
      return runManager("io_uring");
    case "wal-sync":
      return runManager("sync");
    case "engine":
      return runEngine();
    case "plain":
      return runPlain();
    case "sqlite":
      return Promise.resolve(runSqlite());
    case "setup":
      return runSetup();
    case "merge":
      return runMerge();
    case "recovery":
      return runRecovery();
    default:
      throw new TypeError(`unknown system "${system}"`);
  }
})();

const sorted = measured.lat?.sort((a, b) => a - b);
const result: RunResult = {
  records: measured.records,
  seconds: measured.seconds,
  recordsPerSec: measured.records / measured.seconds,
  mbPerSec: measured.records * REC / measured.seconds / 1e6,
  p50Us: sorted?.length ? pct(sorted, 0.5) : undefined,
  p99Us: sorted?.length ? pct(sorted, 0.99) : undefined,
  peakRssBytes: await peakRss(),
  cpuNsPerRecord: measured.cpuNsPerRecord,
  backend: measured.backend,
  note: measured.note,
};
console.log(JSON.stringify(result));
