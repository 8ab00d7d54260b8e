// The seeded power-loss simulator with the manager's Workers: a real `PerCoreWalManager` (its
// core Workers, the shared-memory append path, producers awaiting `sync()` on the main thread and
// in a producer Worker, checkpoints by the real `CheckpointCoordinator`) runs over the volatile-
// cache disk model (tests/_power_loss_backend.ts), which stays on the main thread: each core
// Worker's backend and its own file-system operations (reopen's repairs, directory fsyncs) are a
// proxy to it (tests/_power_loss_proxy.ts, served by tests/_power_loss_server.ts, put into the
// Worker by the manager's test-only `backendModule` option), and the main thread's `wal.json`,
// `wal.lock` and checkpoints go through it by `replaceDurabilityOps`. Chains complete in an order
// the seed chooses. At a seeded moment (a step of the run, or the n-th operation of a Worker) the
// power goes: every later operation fails, the manager is closed without reaching the disk, the
// model keeps what it decides, and then recovery (`recoverPerCore`, read only) must return every
// record whose `sync()` resolved on its producer's thread, with its bytes, each producer's records
// a prefix of what it appended, nothing else; the manager reopens (its Workers repairing through
// the model) and the run goes on. At the end a real manager (io_uring, real files) reopens the
// image: its segments must hold contiguous sequences of known records, each producer's in order,
// and recovery must still return the same state.
//
// A seed replays its choices, not the threads' timing: a failing seed may need a few runs (or
// `--trace`) to fail again the same way.
import { PerCoreWalConfig } from "../src/config.ts";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { replaceDurabilityOps } from "../src/fs.ts";
import { PowerLossBackend } from "./_power_loss_backend.ts";
import { PowerLossServer } from "./_power_loss_server.ts";
import { powerLossValue, Progress } from "./_power_loss_values.ts";
import { readCore, rng } from "./_helpers.ts";

const NUM_CORES = 2;
const decoder = new TextDecoder();
const PROXY_URL = new URL("./_power_loss_proxy.ts", import.meta.url).href;
const PRODUCER_URL = new URL("./_power_loss_producer.ts", import.meta.url).href;

/** What one seed did. */
export interface WorkerSimResult {
  seed: number;
  writeMode: "direct" | "buffered";
  /** Manager sessions, each ended by a power loss. */
  sessions: number;
  /** Records appended (main thread and producer Worker), and acknowledged by a resolved sync(). */
  recordsAppended: number;
  recordsAcknowledged: number;
  /** Of them, by the producer Worker. */
  producerAcknowledged: number;
  /** Records that survived a power loss without an acknowledgement. */
  unacknowledgedSurvivors: number;
  tornWrites: number;
  dirOpsUndone: number;
  /** Power losses at a chosen operation of a core Worker (not between steps). */
  cutsInWorkerOps: number;
  /** Checkpoints started, finished, and in progress when the power went. */
  checkpoints: number;
  checkpointsDone: number;
  checkpointsCut: number;
  /** Segment layout chains and window extensions submitted by the Workers. */
  layoutChains: number;
  extensionChains: number;
  /** Operations the Workers made through the model, and segment files they created. */
  workerOps: number;
  segmentsCreated: number;
}

/** One producer's records: `${name}-${n}` on core `core`. */
interface Stream {
  name: string;
  core: number;
  /** Records that may have been appended (n below it). */
  appended: number;
  /** Records a resolved sync() acknowledged (n below it). */
  acked: number;
}

/** Runs seed `seed` in directory `dir` (which must exist and be empty). */
export async function simulateWorkers(
  seed: number,
  dir: string,
  trace?: (line: string) => void,
): Promise<WorkerSimResult> {
  const rand = rng(seed);
  const direct = rand() < 0.5;
  const segmentSizeBytes = rand() < 0.5 ? 64 * 1024 : 16 * 1024;
  const walDir = `${dir}/wal`;
  const config = new PerCoreWalConfig(walDir, NUM_CORES, {
    segmentSizeBytes,
    maxBatchBytes: 4096,
    writeMode: direct ? "direct" : "buffered",
    sharedBufferBytes: 1 << 20,
  });
  const io = new PowerLossBackend(rand, direct, dir);
  const result: WorkerSimResult = {
    seed,
    writeMode: direct ? "direct" : "buffered",
    sessions: 1 + Math.floor(rand() * 3),
    recordsAppended: 0,
    recordsAcknowledged: 0,
    producerAcknowledged: 0,
    unacknowledgedSurvivors: 0,
    tornWrites: 0,
    dirOpsUndone: 0,
    cutsInWorkerOps: 0,
    checkpoints: 0,
    checkpointsDone: 0,
    checkpointsCut: 0,
    layoutChains: 0,
    extensionChains: 0,
    workerOps: 0,
    segmentsCreated: 0,
  };
  const streams: Stream[] = [
    { name: "m0", core: 0, appended: 0, acked: 0 },
    { name: "m1", core: 1, appended: 0, acked: 0 },
  ];
  const useProducer = rand() < 0.5;
  const producer: Stream = {
    name: "w",
    core: Math.floor(rand() * NUM_CORES),
    appended: 0,
    acked: 0,
  };
  if (useProducer) streams.push(producer);
  const byName = new Map(streams.map((s) => [s.name, s]));
  const retain = 1 + Math.floor(rand() * 2);
  const maxMemoryBytes = seed % 2 === 0 ? 4096 : undefined;
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
  /** The state recovery returned after the last power loss, to compare with the end's. */
  let lastState = new Map<string, Uint8Array>();

  /** One session: open, run, lose power, check. */
  const session = async (s: number) => {
    const server = new PowerLossServer(io, NUM_CORES);
    if (Deno.env.get("SIM_DEBUG")) server.trace = trace;
    const failures: unknown[] = [];
    let manager: PerCoreWalManager | undefined;
    let worker: Worker | undefined;
    let workerDone: Promise<void> | undefined;
    const progress = new Int32Array(new SharedArrayBuffer(12));
    const producerFrom = producer.appended;
    const syncs: Promise<void>[] = [];
    let checkpoint: Promise<void> | undefined;
    try {
      io.auto = true;
      trace?.(`session ${s}: opening`);
      manager = await PerCoreWalManager.open(config, {
        backendModule: { url: PROXY_URL, perCore: server.channels.map((c) => c.sab) },
      });
      io.auto = false;
      const m = manager;
      trace?.(`session ${s}: open, sequences ${m.positions().map((p) => p.sequence)}`);
      // The power goes at a chosen operation of the Workers, or after a chosen step.
      const steps = 30 + Math.floor(rand() * 120);
      if (rand() < 0.4) server.cutAfter(Math.floor(rand() * 60));
      if (useProducer) {
        progress[Progress.APPENDED] = producer.appended;
        progress[Progress.ACKED] = producer.acked;
        worker = new Worker(PRODUCER_URL, { type: "module" });
        workerDone = new Promise((resolve) => {
          worker!.onmessage = () => resolve();
          worker!.onerror = (e) => {
            e.preventDefault();
            failures.push(new Error(`producer Worker: ${e.message}`));
            resolve();
          };
        });
        worker.postMessage({
          handle: m.writerHandle(producer.core),
          name: producer.name,
          progress: progress.buffer,
          from: producer.appended,
          seed: Math.floor(rand() * 2 ** 31),
        });
      }
      const coordinator = new CheckpointCoordinator(m, { retain, maxMemoryBytes });
      for (let step = 0; step < steps && !server.dead; step++) {
        const x = rand();
        const st = streams[Math.floor(rand() * 2)];
        if (x < 0.3) {
          const n = 1 + Math.floor(rand() * 4);
          for (let i = 0; i < n; i++) {
            const k = st.appended;
            try {
              m.writer(st.core).appendPut(`${st.name}-${k}`, powerLossValue(st.name, k));
            } catch (e) {
              if (e instanceof PerCoreWalError && e.code === "Backpressure") break;
              throw e;
            }
            st.appended++;
            result.recordsAppended++;
          }
        } else if (x < 0.45) {
          const upTo = st.appended;
          syncs.push(
            m.writer(st.core).sync().then(() => {
              // Resolved: acknowledged (also when the answer comes after the power went: the
              // Worker published it before).
              if (upTo > st.acked) {
                result.recordsAcknowledged += upTo - st.acked;
                st.acked = upTo;
              }
            }, (e) => {
              if (!server.dead) failures.push(e);
            }),
          );
        } else if (x < 0.9) {
          io.completeOne();
        } else if (x < 0.93 && checkpoint === undefined) {
          result.checkpoints++;
          checkpoint = coordinator.checkpoint().then(() => {
            result.checkpointsDone++;
            checkpoint = undefined;
          }, (e) => {
            const busy = e instanceof PerCoreWalError && e.code === "Backpressure";
            if (!server.dead && !busy) failures.push(e);
            checkpoint = undefined;
          });
        }
        await tick();
        if (failures.length > 0) throw failures[0];
      }
      if (server.dead) result.cutsInWorkerOps++;
      if (checkpoint !== undefined) result.checkpointsCut++;
    } finally {
      // The power loss: nothing reaches the model any more; then everything is stopped.
      server.cut();
      io.auto = false;
      Atomics.store(progress, Progress.STOP, 1);
      trace?.(`session ${s}: power cut`);
      await manager?.close().catch(() => {});
      trace?.(`session ${s}: manager closed`);
      await workerDone;
      worker?.terminate();
      await Promise.allSettled(syncs);
      trace?.(`session ${s}: syncs settled`);
      await checkpoint;
      await server.stop();
    }
    if (failures.length > 0) throw failures[0];
    if (useProducer) {
      producer.appended = Atomics.load(progress, Progress.APPENDED);
      const acked = Atomics.load(progress, Progress.ACKED);
      if (acked > producer.acked) {
        result.recordsAcknowledged += acked - producer.acked;
        result.producerAcknowledged += acked - producer.acked;
        producer.acked = acked;
      }
      result.recordsAppended += producer.appended - producerFrom;
    }
    result.workerOps += server.requests;
    result.segmentsCreated += server.filesCreated;
    const r = io.powerLoss();
    result.tornWrites += r.torn;
    result.dirOpsUndone += r.dirOpsUndone;
    trace?.(`session ${s}: power loss ${JSON.stringify(r)}; ${JSON.stringify(streams)}`);
    lastState = await checkRecovery();
  };

  /**
   * Recovery (read only): every acknowledged record with its bytes, each stream's records a
   * prefix of what it appended, nothing else. The streams go on after the survivors.
   */
  const checkRecovery = async () => {
    const state = new Map<string, Uint8Array>();
    const seen = new Map(streams.map((s) => [s.name, new Set<number>()]));
    {
      using rec = await recoverPerCore(walDir, { readOnly: true });
      for (const [k, v] of rec.state) {
        const key = decoder.decode(k);
        const m = /^(\w+)-(\d+)$/.exec(key);
        const st = m === null ? undefined : byName.get(m[1]);
        if (m === null || st === undefined) throw new Error(`recovery returned key "${key}"`);
        const n = Number(m[2]);
        if (n >= st.appended || !_equal(v, powerLossValue(st.name, n))) {
          throw new Error(`recovery returned ${key}, never appended with those bytes`);
        }
        seen.get(st.name)!.add(n);
        state.set(key, v.slice());
      }
    }
    for (const st of streams) {
      const ns = seen.get(st.name)!;
      const k = ns.size;
      for (let n = 0; n < k; n++) {
        if (!ns.has(n)) throw new Error(`${st.name}: record ${n} missing before ${k - 1}`);
      }
      if (k < st.acked) {
        throw new Error(`${st.name}: ${st.acked} records acknowledged, ${k} recovered`);
      }
      result.unacknowledgedSurvivors += k - st.acked;
      trace?.(`${st.name}: ${st.acked} acknowledged, ${k} recovered of ${st.appended}`);
      st.appended = st.acked = k;
    }
    return state;
  };

  /**
   * A real manager reopens what the last power loss left; its segments hold, per core, a
   * contiguous run of sequences of known records (each stream's in order, ending at its last
   * recovered record unless a checkpoint retired them); recovery returns the same state.
   */
  const checkEnd = async () => {
    trace?.(`reopening with a real manager`);
    const real = await PerCoreWalManager.open(config);
    const last = real.positions().map((p) => p.sequence);
    await real.close();
    for (let c = 0; c < NUM_CORES; c++) {
      const entries = await readCore(config, c);
      const first = entries.length === 0 ? last[c] + 1 : entries[0].sequence;
      const lastN = new Map<string, number>();
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        if (e.sequence !== first + i) throw new Error(`core ${c}: sequence ${e.sequence} at ${i}`);
        if (e.operation.type === "epochBarrier") continue;
        if (e.operation.type !== "put") throw new Error(`core ${c}: ${e.operation.type}`);
        const key = decoder.decode(e.operation.key);
        const [name, n] = [key.slice(0, key.lastIndexOf("-")), Number(key.split("-").pop())];
        const st = byName.get(name);
        if (st === undefined || st.core !== c || !_equal(e.operation.value, lastState.get(key)!)) {
          throw new Error(`core ${c}: the reopened log holds ${key}, which recovery did not give`);
        }
        const prev = lastN.get(name);
        if (prev !== undefined && n !== prev + 1) {
          throw new Error(`core ${c}: ${name}-${n} follows ${name}-${prev}`);
        }
        lastN.set(name, n);
      }
      if (entries.length > 0 && first + entries.length - 1 !== last[c]) {
        throw new Error(`core ${c}: segments end at ${first + entries.length - 1}, not ${last[c]}`);
      }
      for (const [name, n] of lastN) {
        if (n !== byName.get(name)!.appended - 1) {
          throw new Error(
            `core ${c}: ${name} ends at ${n} in the log, ${
              byName.get(name)!.appended - 1
            } recovered`,
          );
        }
      }
    }
    using rec = await recoverPerCore(walDir, { readOnly: true });
    if (rec.state.size !== lastState.size) {
      throw new Error(
        `recovery after the reopen: ${rec.state.size} keys, ${lastState.size} before`,
      );
    }
    for (const [k, v] of rec.state) {
      const want = lastState.get(decoder.decode(k));
      if (want === undefined || !_equal(v, want)) {
        throw new Error(`recovery after the reopen changed ${decoder.decode(k)}`);
      }
    }
  };

  const previousOps = replaceDurabilityOps(io.ops);
  try {
    for (let s = 0; s < result.sessions; s++) await session(s);
    replaceDurabilityOps(previousOps);
    await checkEnd();
  } catch (e) {
    throw new Error(
      `power-loss (Workers) seed ${seed} failed: ${e instanceof Error ? e.message : e}\n` +
        `replay: SEED=${seed} deno task test:powerloss:workers --trace`,
      { cause: e },
    );
  } finally {
    replaceDurabilityOps(previousOps);
    result.layoutChains = io.layoutChains;
    result.extensionChains = io.extensionChains;
    await io.close();
  }
  return result;
}

function _equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
