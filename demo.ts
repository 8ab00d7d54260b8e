/**
 * The main job: a short demonstration of the segment engine on real files.
 *
 * One log per core (in this process, one after the other's batches in flight), events appended
 * with durable acknowledgements, then the directory is reopened and read back with the
 * validating reader to show that every acknowledged event is there.
 *
 * Usage: deno task demo [--dir ./data/wal] [--events 200000] [--cores N] [--backend auto|io_uring|sync]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CoreLog, PerCoreWalConfig, PerCoreWalReader } from "./mod.ts";
import { listCoreSegments } from "./src/core_log.ts";

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
const say = (s: string) => console.log(s);
const progress = (s: string) =>
  tty ? Deno.stdout.writeSync(new TextEncoder().encode(`\r${s}\x1b[K`)) : undefined;

await Deno.remove(values.dir, { recursive: true }).catch(() => {});
const config = new PerCoreWalConfig(values.dir, cores, {
  backend,
  segmentSizeBytes: 16 * 1024 * 1024,
});
say(`@percore/wal demo: ${events} events of 128 bytes over ${cores} core log(s) in ${values.dir}`);

// 1. Append with durable acknowledgements: a sync() every 512 events per core, 8 in flight.
const logs = await Promise.all(Array.from({ length: cores }, (_, c) => CoreLog.open(config, c)));
say(
  `backend: ${logs[0].backend} (${logs[0].writeMode})${
    logs[0].fallbackReason ? `, fell back: ${logs[0].fallbackReason}` : ""
  }`,
);
const value = new Uint8Array(112);
const key = new Uint8Array(16);
const keyView = new DataView(key.buffer);
const acked = new Array<bigint>(cores).fill(0n);
const t0 = performance.now();
const inFlight: Promise<void>[] = [];
for (let i = 0; i < events; i++) {
  const c = i % cores;
  keyView.setUint32(0, i, true);
  const log = logs[c];
  log.appendPut(key, value);
  if (i % (512 * cores) >= 512 * cores - cores) {
    const seq = log.sequence;
    inFlight.push(
      log.sync().then(() => {
        if (seq > acked[c]) acked[c] = seq;
      }),
    );
    if (inFlight.length >= 8 * cores) await inFlight.shift();
    if (i % 20480 < cores) progress(`appended ${i + 1}/${events}`);
  }
}
await Promise.all(inFlight);
await Promise.all(logs.map(async (log, c) => {
  await log.sync();
  acked[c] = log.durableSequence;
}));
const seconds = (performance.now() - t0) / 1000;
progress("");
const metrics = logs.map((l) => l.metrics());
await Promise.all(logs.map((l) => l.close()));
const p50 = Math.max(...metrics.map((m) => m.syncLatency.p50Us));
const p99 = Math.max(...metrics.map((m) => m.syncLatency.p99Us));
const syncs = metrics.reduce((n, m) => n + m.fdatasyncs, 0);
say(
  `appended and acknowledged ${events} events in ${seconds.toFixed(2)} s: ${
    Math.round(events / seconds).toLocaleString("en")
  } events/s`,
);
say(
  `${syncs} fdatasyncs, batch durability latency p50 ${(p50 / 1000).toFixed(2)} ms, p99 ${
    (p99 / 1000).toFixed(2)
  } ms`,
);

// 2. Read everything back through the validating reader and check every acknowledged event.
let read = 0;
for (let c = 0; c < cores; c++) {
  const segs = listCoreSegments(config, c);
  let expected = 1n;
  for (let s = 0; s < segs.length; s++) {
    await using r = await PerCoreWalReader.open(segs[s].path, {
      isLastSegment: s === segs.length - 1,
    });
    for await (const e of r) {
      if (e.sequence !== expected++) {
        throw new Error(`core ${c}: sequence ${e.sequence} out of order`);
      }
      read++;
    }
  }
  if (expected - 1n < acked[c]) {
    throw new Error(`core ${c}: acknowledged ${acked[c]} but only ${expected - 1n} read back`);
  }
}
const segments = cores === 0
  ? 0
  : Array.from({ length: cores }, (_, c) => listCoreSegments(config, c).length).reduce((a, b) =>
    a + b
  );
say(
  `read back ${read} events from ${segments} segment files: every acknowledged event is there, in order`,
);

// 3. Reopen: sequences continue where they stopped.
const again = await CoreLog.open(config, 0);
const next = again.appendPut("after-reopen", "x");
await again.close();
say(`reopened core 0: next sequence ${next} (continues after ${acked[0]})`);
say(
  `summary: events=${events} throughput=${Math.round(events / seconds)}/s p50=${
    (p50 / 1000).toFixed(2)
  }ms p99=${(p99 / 1000).toFixed(2)}ms backend=${metrics[0].backend}/${metrics[0].writeMode}`,
);
