// The workloads and systems of `deno task bench:compare`, shared by the driver and the child.
import { PUT_OVERHEAD_BYTES } from "../../src/format.ts";

/** A workload's parameters. */
export interface Workload {
  id: string;
  title: string;
  /** Records written (per core for W5 and W7). */
  records: number;
  /** Key + value bytes of one record (the key is 16 bytes). */
  payloadBytes: number;
  /** Records per sync() (W1, W2, W4, W5). */
  batch: number;
  /** How many sync() may be outstanding (1 = each awaited). */
  inFlight: number;
  /** Concurrent producers (W3). */
  producers: number;
  cores: number;
  /** The systems measured; fio rows are added by the driver. */
  systems: string[];
  /** fio block size and jobs, when the disk's limit applies. */
  fio?: { bs: number; jobs: number; sizeBytes: number };
  /**
   * A cold start: the records are written at once after `open()`, and plain Deno runs only its
   * first loop (`writeSync` + `syncDataSync`), so that no system is measured warm.
   */
  cold?: boolean;
}

/** How large a run is: the full comparison, a short smoke run, or a tiny one for the tests. */
export type RunSize = "full" | "quick" | "tiny";

/** The framed size of a put record with `payloadBytes` of key + value. */
export function recordBytes(payloadBytes: number): number {
  return PUT_OVERHEAD_BYTES + payloadBytes;
}

const round4k = (n: number) => Math.ceil(n / 4096) * 4096;

/** The workloads, at full size, `quick` (a short smoke run) or `tiny` (the harness's test). */
export function workloads(size: RunSize): Workload[] {
  // Tiny sizes are a tenth of the quick ones: enough to pass through every code path.
  const q = (full: number, small: number) =>
    size === "full" ? full : size === "quick" ? small : Math.ceil(small / 10);
  const wal = ["wal-uring", "wal-sync"];
  const all = [...wal, "plain", "sqlite", "engine"];
  const w1Bytes = 512 * recordBytes(128);
  return [
    {
      id: "W1",
      title: "pipelined durable ingest (1 core, 1 producer, sync() every 512, 8 in flight)",
      // A million: the steady figure of issue 15, its first records (V8 still compiling) a small
      // part of it; W1c is the cold start.
      records: q(1_000_000, 20_480),
      payloadBytes: 128,
      batch: 512,
      inFlight: 8,
      producers: 1,
      cores: 1,
      // ring-raw: W1's shape through a bare io_uring loop, the bound this machine sets.
      systems: [...all, "ring-raw"],
      fio: { bs: round4k(w1Bytes), jobs: 1, sizeBytes: q(256, 32) << 20 },
    },
    {
      id: "W1c",
      title: "cold ingest (W1's loop, the first 100,000 records right after open(), no pause)",
      records: q(100_000, 20_480),
      payloadBytes: 128,
      batch: 512,
      inFlight: 8,
      producers: 1,
      cores: 1,
      systems: all,
      cold: true,
    },
    {
      id: "W2",
      title: "batched durable, latency bound (sync() every 512, each awaited)",
      records: q(200_000, 20_480),
      payloadBytes: 128,
      batch: 512,
      inFlight: 1,
      producers: 1,
      cores: 1,
      systems: all,
      fio: { bs: round4k(w1Bytes), jobs: 1, sizeBytes: q(256, 32) << 20 },
    },
    {
      id: "W2s",
      title: "single durable (each append awaited durable)",
      records: q(5_000, 500),
      payloadBytes: 128,
      batch: 1,
      inFlight: 1,
      producers: 1,
      cores: 1,
      systems: all,
      fio: { bs: 4096, jobs: 1, sizeBytes: q(64, 8) << 20 },
    },
    {
      id: "W3",
      title: "group commit (64 concurrent producers on 1 core, each awaiting its own record)",
      records: q(50_000, 5_000),
      payloadBytes: 128,
      batch: 1,
      inFlight: 1,
      producers: 64,
      cores: 1,
      // node:sqlite's API is synchronous: 64 producers would commit one after the other, which
      // is W2s. Plain Deno: the group commit a competent user writes (appends go to a buffer; one
      // write + syncData at a time; every waiter of a flush resolved after it); plain-naive: each
      // of the 64 producers awaits its own write + syncData.
      systems: [...wal, "plain", "plain-naive", "engine"],
    },
    {
      id: "W4",
      title: "bandwidth (4 KiB records, sync() every 1 MiB, 8 in flight)",
      records: q(65_536, 8_192), // 256 MiB (32 MiB quick) of key + value
      payloadBytes: 4096,
      batch: 256,
      inFlight: 8,
      producers: 1,
      cores: 1,
      systems: [...wal, "plain", "sqlite"],
      fio: { bs: 1 << 20, jobs: 1, sizeBytes: q(256, 32) << 20 },
    },
    {
      id: "W5",
      title: "two cores (W1 on each core at once, aggregate)",
      records: q(200_000, 20_480),
      payloadBytes: 128,
      batch: 512,
      inFlight: 8,
      producers: 1,
      cores: 2,
      systems: [...wal, "plain"],
      fio: { bs: round4k(w1Bytes), jobs: 2, sizeBytes: q(256, 32) << 20 },
    },
    {
      id: "W6",
      title: "append cost (appends without sync, one producer thread)",
      records: q(2_000_000, 200_000),
      payloadBytes: 128,
      batch: 65_536,
      inFlight: 1,
      producers: 1,
      cores: 1,
      systems: [...wal, "plain", "sqlite", "engine"],
    },
    {
      id: "W7",
      title: "merge and recovery (2 cores x 1M entries)",
      records: q(1_000_000, 100_000),
      payloadBytes: 128,
      batch: 512,
      inFlight: 8,
      producers: 1,
      cores: 2,
      systems: ["merge", "recovery"],
    },
  ];
}

/** What one child run reports. */
export interface RunResult {
  records: number;
  seconds: number;
  recordsPerSec: number;
  mbPerSec: number;
  p50Us?: number;
  p99Us?: number;
  peakRssBytes: number;
  /** CPU time of all the process's threads per record (W6: the cost "wherever it is computed"). */
  cpuNsPerRecord?: number;
  /** Milliseconds `open()` took (the WAL's manager or engine, plain Deno's file, the database). */
  openMs?: number;
  /**
   * Milliseconds deliberately waited between `open()` and the first timed record: 0 for every
   * row (a run that waited would hide the cost of a cold start; see tests/bench_compare_test.ts).
   */
  settleMs?: number;
  /** Allocated bytes (st_blocks × 512) of the system's directory right after `open()`. */
  diskAfterOpenBytes?: number;
  /** Allocated bytes of the system's directory after the workload, before close. */
  diskAfterRunBytes?: number;
  backend: string;
  note?: string;
}
