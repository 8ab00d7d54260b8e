// deno task bench: merge throughput (2 and 4 cores x 1M entries) with peak memory, recovery of
// a ~1 GB WAL, and checkpoint coordination with 4 cores (from the epoch advance until every
// barrier is durable). The WALs are written once, at module load, into bench/.data/recovery.
import {
  CheckpointCoordinator,
  mergeSegments,
  PerCoreWalConfig,
  PerCoreWalManager,
  recoverPerCore,
} from "../mod.ts";
import { CoreLog } from "../src/core_log.ts";

const DATA = new URL("./.data/recovery", import.meta.url).pathname;
await Deno.remove(DATA, { recursive: true }).catch(() => {});
Deno.mkdirSync(DATA, { recursive: true });
const value = new Uint8Array(112).fill(0x5a);
const key = new Uint8Array(16);
const kv = new DataView(key.buffer);

/** Writes `perCore` 128-byte puts on each of `cores` cores, one engine at a time, 8 batches in flight. */
async function write(name: string, cores: number, perCore: number): Promise<PerCoreWalConfig> {
  const config = new PerCoreWalConfig(`${DATA}/${name}`, cores, {
    segmentSizeBytes: 64 * 1024 * 1024,
  });
  for (let c = 0; c < cores; c++) {
    const log = await CoreLog.open(config, c);
    const pending: Promise<void>[] = [];
    for (let i = 0; i < perCore; i++) {
      kv.setUint32(0, i, true);
      kv.setUint32(4, c, true);
      log.appendPut(key, value);
      if (i % 4096 === 4095) {
        pending.push(log.sync());
        if (pending.length >= 8) await pending.shift();
      }
    }
    await log.close();
  }
  return config;
}

const t0 = performance.now();
const two = await write("merge-2", 2, 1_000_000);
const four = await write("merge-4", 4, 1_000_000);
const big = await write("recover-1g", 4, 1_600_000);
const bytes = (dir: string) =>
  [...Deno.readDirSync(dir)].reduce(
    (n, e) => n + (e.isFile ? Deno.statSync(`${dir}/${e.name}`).size : 0),
    0,
  );
console.log(
  `generated the WALs in ${((performance.now() - t0) / 1000).toFixed(1)} s; recover-1g holds ${
    (bytes(big.baseDir) / 2 ** 30).toFixed(2)
  } GiB of segment files`,
);

/** Merges a whole WAL; returns entries/s and the peak RSS growth seen while doing it. */
async function measureMerge(config: PerCoreWalConfig): Promise<string> {
  const rss0 = Deno.memoryUsage().rss;
  let peak = rss0;
  const t = performance.now();
  let n = 0;
  for await (const _ of mergeSegments(config)) {
    if (++n % 65536 === 0) peak = Math.max(peak, Deno.memoryUsage().rss);
  }
  const s = (performance.now() - t) / 1000;
  return `${n} entries in ${s.toFixed(2)} s = ${
    Math.round(n / s).toLocaleString("en")
  } entries/s, peak RSS +${((peak - rss0) / 2 ** 20).toFixed(0)} MiB`;
}
console.log(`merge 2 cores x 1M: ${await measureMerge(two)}`);
console.log(`merge 4 cores x 1M: ${await measureMerge(four)}`);

Deno.bench({
  name: "merge 2 cores x 1M entries",
  group: "merge (streaming, all entries)",
  n: 3,
  warmup: 0,
  async fn() {
    let n = 0;
    for await (const _ of mergeSegments(two)) n++;
    if (n !== 2_000_000) throw new Error(`merged ${n}`);
  },
});

Deno.bench({
  name: "merge 4 cores x 1M entries",
  group: "merge (streaming, all entries)",
  n: 3,
  warmup: 0,
  async fn() {
    let n = 0;
    for await (const _ of mergeSegments(four)) n++;
    if (n !== 4_000_000) throw new Error(`merged ${n}`);
  },
});

Deno.bench({
  name: "recoverPerCore of a ~1 GB WAL (4 cores x 1.6M puts, no checkpoint)",
  group: "recovery",
  n: 2,
  warmup: 0,
  async fn() {
    using r = await recoverPerCore(big.baseDir, { readOnly: true, checkpointDir: false });
    if (r.entriesReplayed !== 6_400_000) throw new Error(`replayed ${r.entriesReplayed}`);
  },
});

// Checkpoint coordination: 4 cores (4 Workers on this machine's CPUs).
const manager = await PerCoreWalManager.open(new PerCoreWalConfig(`${DATA}/coord`, 4));
await new Promise((r) => setTimeout(r, 3000)); // let the initial zero-fill finish
Deno.bench({
  name: "4 cores: advanceEpoch + writeEpochBarrierAll + every barrier durable",
  group: "checkpoint coordination",
  async fn() {
    manager.advanceEpoch();
    const seqs = manager.writeEpochBarrierAll();
    await Promise.all(seqs.map((s, c) => manager.writer(c).waitDurable(s)));
  },
});
Deno.bench({
  name: "4 cores, 512 appends pending on each: the same",
  group: "checkpoint coordination",
  async fn() {
    for (let c = 0; c < 4; c++) {
      for (let i = 0; i < 512; i++) manager.writer(c).appendPut(key, value);
    }
    manager.advanceEpoch();
    const seqs = manager.writeEpochBarrierAll();
    await Promise.all(seqs.map((s, c) => manager.writer(c).waitDurable(s)));
  },
});
Deno.bench({
  name: "4 cores: a whole checkpoint (small state)",
  group: "checkpoint coordination",
  n: 20,
  async fn() {
    await new CheckpointCoordinator(manager).checkpoint();
  },
});
