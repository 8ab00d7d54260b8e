// One system on one workload, in its own process (so RSS and JIT state are its own). Started by
// bench/compare.ts; prints one JSON line (a RunResult) on stdout.
// Usage: deno run ... bench/compare/run.ts <workload> <system> <dir> [--quick | --tiny]
//
// No row waits between open() and its first record: a user who opens the WAL writes at once, so
// the cost of a cold start (the first segment's preparation, V8 compiling the hot paths) is part
// of every figure; W1c measures it on its own. open() is timed apart, and each row reports the
// bytes its directory holds on disk after open() and after the workload.
import { PerCoreWalConfig, PerCoreWalManager, recoverPerCore } from "../../mod.ts";
import { CoreLog } from "../../src/core_log.ts";
import { mergeSegments } from "../../src/merge_stream.ts";
import { Framer, PlainFile, PlainGroupCommit, SqliteLog } from "./plain.ts";
import { layOutRaw, RawRing } from "./ring_raw.ts";
import { recordBytes, type RunResult, type Workload, workloads } from "./workloads.ts";
import { diskBytes } from "./disk.ts";
import { processCpu } from "../_schedstat.ts";

const [wid, system, dir] = Deno.args;
const size = Deno.args.includes("--tiny")
  ? "tiny"
  : Deno.args.includes("--quick")
  ? "quick"
  : "full";
const w: Workload | undefined = workloads(size).find((x) => x.id === wid);
if (w === undefined || system === undefined || dir === undefined) {
  throw new TypeError(
    `usage: run.ts <workload> <system> <dir> [--quick | --tiny], got ${Deno.args}`,
  );
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
  opened?: Opened;
  /** performance.now() when the first timed record began. */
  startedAt?: number;
  diskAfterRunBytes?: number;
}

/** What open() cost, and what came between it and the first timed record. */
interface Opened {
  openMs: number;
  diskAfterOpenBytes: number;
  /**
   * performance.now() when open() resolved, plus the time the disk was measured (and, in W6, the
   * CPU counters read): from here to the first timed record is a pause, reported as `settleMs`.
   */
  readyAt: number;
}

/** Times `open`, then measures the directory's footprint (not counted as a pause). */
async function timedOpen<T>(open: () => T | Promise<T>): Promise<{ it: T; opened: Opened }> {
  const t0 = now();
  const it = await open();
  const t1 = now();
  const diskAfterOpenBytes = diskBytes(dir!);
  const statMs = now() - t1;
  return { it, opened: { openMs: t1 - t0, diskAfterOpenBytes, readyAt: t1 + statMs } };
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

/** Runs the workload on the logs `getLogs` returns (taken inside the timed path). */
async function runLogs(
  getLogs: () => Log[],
): Promise<{ seconds: number; lat: number[]; startedAt: number }> {
  const lat: number[] = [];
  const records = w!.records;
  const startedAt = now();
  const logs = getLogs();
  if (w!.id === "W6") return { seconds: await walAppendOnly(logs[0], records), lat, startedAt };
  if (w!.producers > 1) await walGroup(logs[0], records, lat);
  else if (w!.batch === 1) await walSingle(logs[0], records, lat);
  else await walBatches(logs, records, lat);
  return { seconds: (now() - startedAt) / 1000, lat, startedAt };
}

async function runManager(backend: "io_uring" | "sync"): Promise<Measured> {
  const config = new PerCoreWalConfig(dir, w!.cores, { backend });
  const { it: manager, opened } = await timedOpen(() => PerCoreWalManager.open(config));
  try {
    // W6 asks for the cost per record wherever it is computed: the core Worker's part too. Its
    // reading of /proc is the one thing between open() and the first record; W6 is not cold.
    const cpu0 = w!.id === "W6" ? await processCpu() : 0;
    if (w!.id === "W6") opened.readyAt = now();
    const { seconds, lat, startedAt } = await runLogs(() =>
      Array.from({ length: w!.cores }, (_, c) => manager.writer(c))
    );
    const records = w!.records * w!.cores;
    const cpuNsPerRecord = w!.id === "W6" ? (await processCpu() - cpu0) / records : undefined;
    const diskAfterRunBytes = diskBytes(dir!);
    return {
      records,
      seconds,
      lat,
      backend: manager.backend,
      cpuNsPerRecord,
      opened,
      startedAt,
      diskAfterRunBytes,
    };
  } finally {
    await manager.close();
  }
}

async function runEngine(): Promise<Measured> {
  const config = new PerCoreWalConfig(dir, 1, { backend: "io_uring" });
  const { it: log, opened } = await timedOpen(() => CoreLog.open(config, 0));
  try {
    const { seconds, lat, startedAt } = await runLogs(() => [log]);
    const diskAfterRunBytes = diskBytes(dir!);
    return {
      records: w!.records,
      seconds,
      lat,
      backend: `CoreLog ${log.backend}`,
      opened,
      startedAt,
      diskAfterRunBytes,
    };
  } finally {
    await log.close();
  }
}

// --- plain Deno ---------------------------------------------------------------------------------

async function runPlain(): Promise<Measured> {
  if (w!.producers > 1) return system === "plain-naive" ? runPlainNaive() : runPlainGroup();
  const records = w!.records;
  const batch = w!.id === "W6" ? 512 : w!.batch;
  const { it: files, opened } = await timedOpen(() =>
    Array.from({ length: w!.cores }, (_, c) => new PlainFile(`${dir}/plain-${c}.log`))
  );
  const framers = files.map(() => new Framer(batch * REC));
  try {
    // writeSync + syncDataSync per batch (W6: no sync), one file after the other.
    const syncLat: number[] = [];
    const startedAt = now();
    for (let i = 0; i < records;) {
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
    const syncSeconds = (now() - startedAt) / 1000;
    // What one workload leaves on disk: the async variant below appends as much again.
    const diskAfterRunBytes = diskBytes(dir!);
    const base = { opened, startedAt, diskAfterRunBytes };
    // A cold row counts the first loop only: the second would run on a warm process.
    if (w!.cold || (w!.inFlight === 1 && w!.cores === 1)) {
      return {
        records: records * files.length,
        seconds: syncSeconds,
        lat: syncLat,
        backend: "Deno.FsFile writeSync",
        ...base,
      };
    }
    // The async variant: write + syncData, pipelined (up to inFlight syncData per file).
    const asyncLat: number[] = [];
    const t0 = now();
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
    const asyncSeconds = (now() - t0) / 1000;
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
        ...base,
      }
      : {
        records: total,
        seconds: syncSeconds,
        lat: syncLat,
        backend: "Deno.FsFile writeSync",
        note: rates,
        ...base,
      };
  } finally {
    for (const f of files) f.close();
  }
}

/** W3, as a competent user writes it: 64 producers share a buffer and one flush at a time. */
async function runPlainGroup(): Promise<Measured> {
  const records = w!.records;
  const { it: log, opened } = await timedOpen(() =>
    new PlainGroupCommit(`${dir}/plain-0.log`, w!.producers * REC)
  );
  try {
    const { lat, startedAt, seconds } = await _producers(
      records,
      () => (i) => log.append(keys[i & 511], value),
    );
    return {
      records,
      seconds,
      lat,
      backend: "Deno.FsFile group commit, 64 producers",
      opened,
      startedAt,
      diskAfterRunBytes: diskBytes(dir!),
    };
  } finally {
    log.close();
  }
}

/**
 * W3's producers (`w.producers` of them, each made by `make`) taking the records in turn, each
 * awaiting its own: every latency in µs, when they started, and the seconds they took.
 */
async function _producers(
  records: number,
  make: () => (i: number) => Promise<unknown>,
): Promise<{ lat: number[]; startedAt: number; seconds: number }> {
  const lat: number[] = [];
  let next = 0;
  const startedAt = now();
  const producer = async () => {
    const one = make();
    while (next < records) {
      const i = next++;
      const t1 = now();
      await one(i);
      lat.push((now() - t1) * 1000);
    }
  };
  await Promise.all(Array.from({ length: w!.producers }, producer));
  return { lat, startedAt, seconds: (now() - startedAt) / 1000 };
}

/** W3, naively: each of the 64 producers awaits its own write + syncData. */
async function runPlainNaive(): Promise<Measured> {
  const records = w!.records;
  const { it: file, opened } = await timedOpen(() => new PlainFile(`${dir}/plain-0.log`));
  try {
    const { lat, startedAt, seconds } = await _producers(records, () => {
      const f = new Framer(REC);
      return async (i) => {
        f.reset();
        f.put(keys[i & 511], value);
        await file.writeAll(f.buf.slice(0, f.used));
        await file.syncData();
      };
    });
    return {
      records,
      seconds,
      lat,
      backend: "Deno.FsFile write + syncData per producer",
      opened,
      startedAt,
      diskAfterRunBytes: diskBytes(dir!),
    };
  } finally {
    file.close();
  }
}

// --- node:sqlite --------------------------------------------------------------------------------

async function runSqlite(): Promise<Measured> {
  const { it: db, opened } = await timedOpen(() => new SqliteLog(`${dir}/sqlite.db`));
  const records = w!.records;
  const lat: number[] = [];
  try {
    const t0 = now();
    const base = { opened, startedAt: t0 };
    if (w!.id === "W6") {
      db.begin();
      for (let i = 0; i < records; i++) db.insert(keys[i & 511], value);
      const seconds = (now() - t0) / 1000;
      db.commit();
      const note = "inserts in one transaction";
      return {
        records,
        seconds,
        backend: "node:sqlite",
        note,
        ...base,
        diskAfterRunBytes: diskBytes(dir!),
      };
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
    const seconds = (now() - t0) / 1000;
    return {
      records,
      seconds,
      lat,
      backend: "node:sqlite",
      ...base,
      diskAfterRunBytes: diskBytes(dir!),
    };
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

/** W1's ceiling: its shape through a bare io_uring loop (bench/compare/ring_raw.ts). */
async function runRingRaw(): Promise<Measured> {
  const framer = new Framer(w!.batch * REC);
  for (let k = 0; k < w!.batch; k++) framer.put(keys[k & 511], value);
  const block = framer.buf.subarray(0, framer.used);
  const blocks = Math.ceil(w!.records / w!.batch);
  const path = `${dir}/raw.log`;
  layOutRaw(path, blocks * Math.ceil(block.length / 4096) * 4096);
  const { it: raw, opened } = await timedOpen(() => new RawRing(path, block, w!.inFlight));
  try {
    const startedAt = now();
    const seconds = raw.run(blocks);
    return {
      records: blocks * w!.batch,
      seconds,
      backend: "bare io_uring loop: no encoding, laid-out file (a bound)",
      opened,
      startedAt,
      diskAfterRunBytes: diskBytes(dir!),
    };
  } finally {
    raw.close();
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
    case "plain-naive":
      return runPlain();
    case "sqlite":
      return runSqlite();
    case "ring-raw":
      return runRingRaw();
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
  openMs: measured.opened?.openMs,
  settleMs: measured.opened === undefined || measured.startedAt === undefined
    ? undefined
    : measured.startedAt - measured.opened.readyAt,
  diskAfterOpenBytes: measured.opened?.diskAfterOpenBytes,
  diskAfterRunBytes: measured.diskAfterRunBytes,
  backend: measured.backend,
  note: measured.note,
};
console.log(JSON.stringify(result));
