/**
 * The main job: an end-to-end demonstration on real files.
 *
 * 1. A `PerCoreWalManager` runs one Worker per core. Producers on the main thread and in an
 *    application Worker append events to every core, with durable acknowledgements.
 * 2. A checkpoint is taken on every core (`CheckpointCoordinator`).
 * 3. A child process reopens the WAL, ingests more events and reports what is durable; it is
 *    killed with SIGKILL in the middle of its work.
 * 4. Recovery (checkpoint + replay) rebuilds the state, and every acknowledged event is checked,
 *    byte for byte.
 *
 * Usage: deno task demo [--dir ./data/wal] [--events 200000] [--cores N]
 *                       [--backend auto|io_uring|sync] [--kill-after-ms 1500]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type BackendChoice,
  CheckpointCoordinator,
  PerCoreWalConfig,
  PerCoreWalManager,
  recoverPerCore,
} from "./mod.ts";
import { eventKey, eventValue, isEventValue } from "./demo/_events.ts";

const USAGE = "Usage: deno task demo [--dir ./data/wal] [--events 200000] [--cores N] " +
  "[--backend auto|io_uring|sync] [--kill-after-ms 1500]";
const { values } = parseArgs({
  args: Deno.args,
  options: {
    dir: { type: "string", default: "./data/wal" },
    events: { type: "string", default: "200000" },
    cores: { type: "string", default: String(navigator.hardwareConcurrency) },
    backend: { type: "string", default: "auto" },
    "kill-after-ms": { type: "string", default: "1500" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const events = Number(values.events);
const cores = Number(values.cores);
const killAfterMs = Number(values["kill-after-ms"]);
const backend = values.backend as BackendChoice;
if (!Number.isInteger(events) || events < 2 || !Number.isInteger(killAfterMs) || killAfterMs < 0) {
  console.error(USAGE);
  Deno.exit(2);
}

// Progress: one rewritten line on a terminal, a plain line per step otherwise.
const tty = Deno.stdout.isTerminal();
const enc = new TextEncoder();
let lastPlain = 0;
function progress(s: string, done = false): void {
  if (tty) {
    Deno.stdout.writeSync(enc.encode(`\r${s}\x1b[K${done ? "\n" : ""}`));
  } else if (done || performance.now() - lastPlain > 1000) {
    lastPlain = performance.now();
    console.log(s);
  }
}
const step = (s: string) => progress(s, true);

const walDir = values.dir.replace(/\/+$/, "");
// The checkpoint coordinator's default: `checkpoints` inside the WAL directory (FORMAT.md 11).
const checkpointDir = `${walDir}/checkpoints`;
await clearPreviousRun();
const config = new PerCoreWalConfig(walDir, cores, {
  backend,
  segmentSizeBytes: 16 * 1024 * 1024,
});
console.log(`@percore/wal demo: ${events} events of 128 bytes on ${cores} core(s) in ${walDir}`);

// 1. Ingest: half the events from the main thread, half from an application Worker.
const manager = await PerCoreWalManager.open(config);
step(
  `backend: ${manager.backend}` +
    (manager.fallbackReason ? ` (fell back: ${manager.fallbackReason})` : ""),
);
const t0 = performance.now();
const producer = new Worker(new URL("./demo/_producer.ts", import.meta.url), { type: "module" });
const fromWorker = new Promise<number>((resolve, reject) => {
  producer.onmessage = (e) =>
    e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.acked);
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
const inFlight: Promise<void>[] = [];
for (let i = 0; i < half; i++) {
  const key = eventKey("m", i);
  await manager.writer(i % cores).appendPutAsync(key, eventValue(key));
  if (i % 512 === 511) {
    inFlight.push(manager.syncAll()); // keep appending while up to 8 syncs are in flight
    if (inFlight.length >= 8) await inFlight.shift();
    if (i % 8192 === 8191) {
      progress(`ingest: main thread ${i + 1}/${half} acknowledged or in flight`);
    }
  }
}
await Promise.all(inFlight);
await manager.syncAll();
const workerAcked = await fromWorker;
producer.terminate();
const ingestSeconds = (performance.now() - t0) / 1000;
const metrics = manager.metrics();
const p50 = Math.max(...metrics.map((m) => m.syncLatency.p50Us));
const p99 = Math.max(...metrics.map((m) => m.syncLatency.p99Us));
const batches = metrics.reduce((n, m) => n + m.batches, 0);
const syncs = metrics.reduce((n, m) => n + m.fdatasyncs, 0);
const rate = Math.round((half + workerAcked) / ingestSeconds);
step(
  `ingest: ${
    half + workerAcked
  } events acknowledged (${half} main thread, ${workerAcked} Worker) ` +
    `in ${ingestSeconds.toFixed(2)} s = ${rate.toLocaleString("en")} events/s; ` +
    `${batches} durable batches (${syncs} with an fdatasync, the others durable writes), ` +
    `p50 ${(p50 / 1000).toFixed(2)} ms, p99 ${(p99 / 1000).toFixed(2)} ms`,
);

// 2. Checkpoint: barriers on every core, the state as of the epoch written and fsynced.
const c0 = performance.now();
const checkpoint = await new CheckpointCoordinator(manager).checkpoint(); // into checkpointDir
const checkpointMs = performance.now() - c0;
step(
  `checkpoint ${checkpoint.id}: epoch ${checkpoint.epoch}, ${checkpoint.stateEntries} keys, ` +
    `${checkpoint.entriesMerged} entries merged in ${checkpointMs.toFixed(0)} ms`,
);
await manager.close();

// 3. A child process goes on ingesting and is killed with SIGKILL.
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-ffi",
    "--allow-env",
    new URL("./demo/_child.ts", import.meta.url).pathname,
    walDir,
    String(cores),
    backend,
  ],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
let childAcked = 0;
let killAt = Infinity;
const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
let buffered = "";
let pending = lines.read(); // one read at a time: a read abandoned to a timeout would lose lines
while (performance.now() < killAt) {
  const timeout = new Promise<"timeout">((r) => setTimeout(r, 50, "timeout"));
  const chunk = await Promise.race([pending, timeout]);
  if (chunk === "timeout") continue;
  if (chunk.done) throw new Error("the child process ended before it was killed");
  pending = lines.read();
  buffered += chunk.value;
  const parts = buffered.split("\n");
  buffered = parts.pop()!;
  for (const line of parts) {
    if (line.startsWith("ready")) killAt = performance.now() + killAfterMs;
    const m = /^acked (\d+)$/.exec(line);
    if (m) childAcked = Math.max(childAcked, Number(m[1]));
  }
  progress(`child process: ${childAcked} events acknowledged`);
}
child.kill("SIGKILL");
await lines.cancel();
const status = await child.status;
step(`child process killed (signal ${status.signal}) after ${childAcked} acknowledged events`);

// 4. Recovery: the checkpoint plus the WAL replayed after it.
const r0 = performance.now();
using recovered = await recoverPerCore(walDir, { checkpointDir });
const recoveryMs = performance.now() - r0;
let missing = 0;
const check = (source: string, n: number) => {
  for (let i = 0; i < n; i++) {
    const key = eventKey(source, i);
    if (!isEventValue(key, recovered.state.get(key))) missing++;
  }
};
check("m", half);
check("w", workerAcked);
check("c", childAcked);
let unacknowledged = 0; // written by the child but not yet acknowledged when it was killed
while (recovered.state.has(eventKey("c", childAcked + unacknowledged))) unacknowledged++;
const cut = recovered.report.filter((s) => s.action !== "none").length;
step(
  `recovery: checkpoint ${recovered.checkpoint?.id ?? "none"} + ${recovered.entriesReplayed} ` +
    `entries replayed in ${recoveryMs.toFixed(0)} ms; ${recovered.state.size} keys; ` +
    `${unacknowledged} unacknowledged events also survived; ${cut} segment(s) repaired`,
);
const acknowledged = half + workerAcked + childAcked;
if (missing > 0) {
  console.error(`FAILED: ${missing} of ${acknowledged} acknowledged events are missing or wrong`);
  Deno.exit(1);
}
console.log(
  `summary: ${acknowledged} acknowledged events, all recovered byte for byte | ` +
    `ingest ${rate.toLocaleString("en")} events/s | batch p50 ${(p50 / 1000).toFixed(2)} ms ` +
    `p99 ${(p99 / 1000).toFixed(2)} ms | checkpoint epoch ${checkpoint.epoch} in ` +
    `${checkpointMs.toFixed(0)} ms | recovered ${recovered.state.size} keys | backend ` +
    `${metrics[0].backend}/${metrics[0].writeMode}`,
);

/** Removes the previous run's WAL and checkpoints, and nothing that does not look like them. */
async function clearPreviousRun(): Promise<void> {
  const names = async (dir: string) => {
    try {
      return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  };
  const wal = await names(walDir);
  if (wal.length > 0 && !wal.includes("wal.json")) {
    throw new Error(`${walDir} is not empty and holds no wal.json: choose another --dir`);
  }
  const ckpts = await names(checkpointDir);
  if (ckpts.some((n) => !/^ckpt-\d+(\.tmp)?$/.test(n))) {
    throw new Error(`${checkpointDir} holds files that are not checkpoints: choose another --dir`);
  }
  await Deno.remove(walDir, { recursive: true }).catch(() => {});
  await Deno.remove(checkpointDir, { recursive: true }).catch(() => {});
}
