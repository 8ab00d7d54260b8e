/**
 * The main job: a short end-to-end demonstration on real files.
 *
 * A `PerCoreWalManager` runs one Worker per core. Producers on the main thread and in an
 * application Worker append events to every core, with durable acknowledgements; an epoch
 * barrier is written on every core; then the WAL is closed, reopened, and everything is read
 * back through the validating reader to show that every acknowledged event is there, in order.
 *
 * Usage: deno task demo [--dir ./data/wal] [--events 200000] [--cores N] [--backend auto|io_uring|sync]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { PerCoreWalConfig, PerCoreWalManager } from "./mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    dir: { type: "string", default: "./data/wal" },
    events: { type: "string", default: "200000" },
    cores: { type: "string", default: String(navigator.hardwareConcurrency) },
    backend: { type: "string", default: "auto" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "Usage: deno task demo [--dir ./data/wal] [--events 200000] [--cores N] [--backend auto|io_uring|sync]",
  );
  Deno.exit(0);
}
const events = Number(values.events);
const cores = Number(values.cores);
const backend = values.backend as "auto" | "io_uring" | "sync";
const tty = Deno.stdout.isTerminal();
const progress = (s: string) => {
  if (tty) Deno.stdout.writeSync(new TextEncoder().encode(`\r${s}\x1b[K`));
};

await Deno.remove(values.dir, { recursive: true }).catch(() => {});
const config = new PerCoreWalConfig(values.dir, cores, {
  backend,
  segmentSizeBytes: 16 * 1024 * 1024,
});
console.log(
  `@percore/wal demo: ${events} events of 128 bytes on ${cores} core(s) in ${values.dir}`,
);

// 1. One Worker per core. Half the events come from the main thread, half from a Worker.
const manager = await PerCoreWalManager.open(config);
console.log(
  `backend: ${manager.backend}` +
    (manager.fallbackReason ? ` (fell back: ${manager.fallbackReason})` : ""),
);
const t0 = performance.now();
const producer = new Worker(new URL("./demo_producer.ts", import.meta.url), { type: "module" });
const fromWorker = new Promise<number>((resolve, reject) => {
  producer.onmessage = (
    e,
  ) => (e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.acked));
  producer.onerror = (e) => {
    e.preventDefault();
    reject(new Error(e.message));
  };
});
const half = Math.floor(events / 2);
producer.postMessage({
  handles: Array.from({ length: cores }, (_, c) => manager.writerHandle(c)),
  events: events - half,
});

const value = new Uint8Array(112);
const key = new Uint8Array(16);
const keyView = new DataView(key.buffer);
const inFlight: Promise<void>[] = [];
for (let i = 0; i < half; i++) {
  keyView.setUint32(0, i, true);
  manager.writer(i % cores).appendPut(key, value);
  if (i % 512 === 511) {
    inFlight.push(manager.syncAll()); // keep appending while up to 8 syncs are in flight
    if (inFlight.length >= 8) await inFlight.shift();
    if (i % 16384 === 16383) progress(`main thread appended ${i + 1}/${half}`);
  }
}
await Promise.all(inFlight);
await manager.syncAll();
const workerAcked = await fromWorker;
producer.terminate();
const seconds = (performance.now() - t0) / 1000;
progress("");
manager.advanceEpoch();
const barriers = manager.writeEpochBarrierAll();
await manager.syncAll();
const acked = manager.syncedPositions().map((p) => p.sequence);
const metrics = manager.metrics();
await manager.close();
const p50 = Math.max(...metrics.map((m) => m.syncLatency.p50Us));
const p99 = Math.max(...metrics.map((m) => m.syncLatency.p99Us));
const syncs = metrics.reduce((n, m) => n + m.fdatasyncs, 0);
console.log(
  `appended and acknowledged ${
    half + workerAcked
  } events (${half} from the main thread, ${workerAcked} from a Worker) ` +
    `in ${seconds.toFixed(2)} s: ${
      Math.round((half + workerAcked) / seconds).toLocaleString("en")
    } events/s`,
);
console.log(
  `${syncs} fdatasyncs; batch durability latency p50 ${(p50 / 1000).toFixed(2)} ms, p99 ${
    (p99 / 1000).toFixed(2)
  } ms`,
);
console.log(
  `epoch ${manager.epoch} begins at sequences ${barriers.join(", ")} (one barrier per core)`,
);

// 2. Reopen and read everything back, merged across cores.
const again = await PerCoreWalManager.open(config);
const entries = await again.mergeSegments();
const seqs = again.syncedPositions().map((p) => p.sequence);
const next = again.writer(0).appendPut("after-reopen", "x");
await again.close();
const perCore = Array.from({ length: cores }, () => 0n);
for (const e of entries) {
  if (e.sequence !== perCore[e.coreId] + 1n) {
    throw new Error(`core ${e.coreId}: sequence ${e.sequence} out of order`);
  }
  perCore[e.coreId] = e.sequence;
}
for (let c = 0; c < cores; c++) {
  if (seqs[c] < acked[c]) throw new Error(`core ${c}: acknowledged ${acked[c]}, found ${seqs[c]}`);
}
console.log(
  `reopened: ${entries.length} entries read back in order (${events} events + ${cores} barriers); ` +
    `core 0 continues at sequence ${next}`,
);
console.log(
  `summary: events=${events} throughput=${Math.round(events / seconds)}/s ` +
    `p50=${(p50 / 1000).toFixed(2)}ms p99=${(p99 / 1000).toFixed(2)}ms backend=${
      metrics[0].backend
    }/${metrics[0].writeMode}`,
);
