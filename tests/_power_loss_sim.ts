// The seeded power-loss simulator: random appends, syncs, completions (in a seeded order) and
// power losses against the real engine (`CoreLog`, two cores, rotations through small segments)
// over the volatile-cache backend. After each power loss the real recovery
// (`PerCoreRecoveryManager`, read only) and the real reopen (`CoreLog.open`, which cuts crash
// tails) must agree, and every acknowledged record must be there exactly once with its bytes,
// each core's sequences contiguous from 1, nothing returned that was not appended. Then the run
// goes on appending to the reopened logs. The reopen itself may lose power again at any of its
// file-system operations (its crash-tail cuts and put-asides, segment removals, fsyncs, which go
// through the model by `replaceDurabilityOps`): after each such loss recovery must still return
// every acknowledged record, and the next reopen finishes the repair. Checkpoints (the real
// `CheckpointCoordinator` over the simulated cores: barriers, state written, renamed, segments
// retired) run now and then, and may lose power at any of their operations; recovery then builds
// on whatever checkpoint is valid, and must still return every acknowledged record. One seed
// replays exactly.
import { PerCoreWalConfig, type SegmentFill } from "../src/config.ts";
import { CoreLog } from "../src/core_log.ts";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import type { PerCoreWalManager } from "../src/manager.ts";
import { reconcileWalMeta } from "../src/wal_meta.ts";
import { ensureDirectory } from "../src/segment_files.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreRecoveryManager } from "../src/recovery.ts";
import { replaceDurabilityOps } from "../src/fs.ts";
import { isSimulatedCrash, PowerLossBackend } from "./_power_loss_backend.ts";
import { readCore, rng } from "./_helpers.ts";

const NUM_CORES = 2;
const decoder = new TextDecoder();

/** What one seed did. */
export interface SimResult {
  seed: number;
  writeMode: "direct" | "buffered";
  steps: number;
  powerLosses: number;
  recordsAppended: number;
  recordsAcknowledged: number;
  /** Records present after power losses although never acknowledged (they may survive). */
  unacknowledgedSurvivors: number;
  /** Pending writes a power loss tore at sector granularity. */
  tornWrites: number;
  /** Unsynced directory entries that vanished. */
  vanishedFiles: number;
  /** Directory changes (creates, renames, unlinks) never fsynced that a power loss undid. */
  dirOpsUndone: number;
  /** Power losses in the middle of a reopen (of its repairs, removals, fsyncs). */
  reopenCrashes: number;
  /** Crash tails a reopen put aside or cut (`segmentsPutAside`, `tornTailCut` events). */
  repairs: number;
  /** Chains laying out a segment's window (zero-fill or fallocate) submitted. */
  layoutChains: number;
  /** Batches written as durable (`RWF_DSYNC`) writes, with no fdatasync, that completed. */
  durableWriteChains: number;
  /** Layout writes (of a window extension or a fresh segment) a power loss tore or dropped. */
  layoutLost: number;
  /** Chains extending a segment's laid-out window, and their writes a power loss tore or dropped. */
  extensionChains: number;
  extensionLost: number;
  /** Checkpoints started, finished, and cut by a power loss at one of their operations. */
  checkpoints: number;
  checkpointsDone: number;
  checkpointCrashes: number;
  /** Repairing recoveries run (before a reopen), repairs they applied, and power losses in them. */
  recoveryRuns: number;
  recoveryRepairs: number;
  recoveryCrashes: number;
  /** Checkpoints that retired segments. */
  checkpointsRetiring: number;
  /** Files written in pieces through the model (state files, spill runs), and `wal.lock`s made. */
  piecewiseFiles: number;
  lockFiles: number;
  /** Checkpoints cut by a power loss, by the last step they had reached. */
  checkpointCrashSteps: Record<string, number>;
}

interface CoreModel {
  log: CoreLog;
  /** Value of each record by sequence − 1 (null: an epoch barrier). */
  values: (Uint8Array | null)[];
  /** Highest sequence whose sync() resolved. */
  acked: number;
}

/** Runs seed `seed` in directory `dir` (which must exist and be empty). */
export async function simulate(
  seed: number,
  dir: string,
  trace?: (line: string) => void,
  segmentFill: SegmentFill = "auto",
): Promise<SimResult> {
  const rand = rng(seed);
  const direct = rand() < 0.5;
  // 64 KiB holds more than 8 batches in flight (one rotation in flight at a time); 16 KiB has
  // room for 3 batches, so a power loss may cut across two or three segments.
  const segmentSizeBytes = rand() < 0.5 ? 64 * 1024 : 16 * 1024;
  const config = new PerCoreWalConfig(`${dir}/wal`, NUM_CORES, {
    segmentSizeBytes,
    maxBatchBytes: 4096,
    writeMode: direct ? "direct" : "buffered",
    segmentFill,
  });
  const io = new PowerLossBackend(rand, direct, dir);
  const result: SimResult = {
    seed,
    writeMode: direct ? "direct" : "buffered",
    steps: 40 + Math.floor(rand() * 200),
    powerLosses: 0,
    recordsAppended: 0,
    recordsAcknowledged: 0,
    unacknowledgedSurvivors: 0,
    tornWrites: 0,
    vanishedFiles: 0,
    dirOpsUndone: 0,
    reopenCrashes: 0,
    repairs: 0,
    layoutChains: 0,
    durableWriteChains: 0,
    layoutLost: 0,
    extensionChains: 0,
    extensionLost: 0,
    checkpoints: 0,
    checkpointsDone: 0,
    checkpointCrashes: 0,
    checkpointsRetiring: 0,
    piecewiseFiles: 0,
    lockFiles: 0,
    checkpointCrashSteps: {},
    recoveryRuns: 0,
    recoveryRepairs: 0,
    recoveryCrashes: 0,
  };
  const failures: unknown[] = [];
  const cores: CoreModel[] = [];
  const ticks = async () => {
    for (let i = 0; i < 8; i++) await Promise.resolve();
  };
  // What the CheckpointCoordinator uses of a manager, over the simulated cores (the manager's
  // own Workers are outside the simulator).
  let epoch = 0;
  let walId = "";
  const manager = {
    config,
    get walId() {
      return walId;
    },
    get epoch() {
      return epoch;
    },
    advanceEpoch: () => ++epoch,
    writeEpochBarrierAll: () =>
      cores.map((m, c) => {
        const seq = m.log.appendEpochBarrier(epoch);
        if (seq !== m.values.length + 1) throw new Error(`core ${c}: barrier got sequence ${seq}`);
        m.values.push(null);
        return seq;
      }),
    writer: (c: number) => ({
      waitDurable: (seq: number, o?: { signal?: AbortSignal }) => cores[c].log.waitDurable(seq, o),
    }),
    syncedPositions: () => cores.map((m) => m.log.syncedPosition),
  } as unknown as PerCoreWalManager;
  let coordinator: CheckpointCoordinator | undefined;
  const retain = 1 + Math.floor(rand() * 2);
  // Every other seed spills its changes in runs of a few KiB (from the seed, not from rand():
  // the draws of every seed stay as they were).
  const maxMemoryBytes = seed % 2 === 0 ? 4096 : undefined;

  const openAll = async () => {
    io.auto = true;
    // As the manager's open: wal.json (its id), then each core.
    ensureDirectory(config.baseDir, config.options);
    walId = reconcileWalMeta(config).walId;
    for (let c = 0; c < NUM_CORES; c++) {
      const log = await CoreLog.open(config, c, {
        backend: io,
        onEvent: (e) => {
          if (e.type === "segmentsPutAside" || e.type === "tornTailCut") result.repairs++;
        },
      });
      if (cores[c] === undefined) cores[c] = { log, values: [], acked: 0 };
      else cores[c].log = log;
    }
    epoch = Math.max(...cores.map((m) => m.log.epoch));
    // A new process: the coordinator trusts nothing of the one before.
    coordinator = new CheckpointCoordinator(manager, { retain, maxMemoryBytes });
    io.auto = false;
  };

  const lose = () => {
    const r = io.powerLoss();
    result.tornWrites += r.torn;
    result.vanishedFiles += r.vanished;
    result.dirOpsUndone += r.dirOpsUndone;
    result.layoutLost += r.layoutLost;
    result.extensionLost += r.extensionLost;
    trace?.(`power loss ${result.powerLosses}: ${JSON.stringify(r)}`);
  };
  /**
   * The real recovery, read only (or repairing the files: cuts, segments put aside): every
   * acknowledged record, each sequence once.
   */
  const recoverAll = async (repair = false) => {
    const seen = cores.map(() => new Map<number, Uint8Array>());
    using rec = await new PerCoreRecoveryManager(config, { readOnly: !repair }).recover();
    if (repair) result.recoveryRepairs += rec.report.filter((l) => l.applied).length;
    for (const [k, v] of rec.state) {
      const m = /^c(\d+)-s(\d+)$/.exec(decoder.decode(k));
      if (m === null) throw new Error(`recovery returned a key never appended`);
      const c = Number(m[1]);
      const seq = Number(m[2]);
      if (seen[c].has(seq)) throw new Error(`core ${c} sequence ${seq} twice`);
      seen[c].set(seq, v);
    }
    for (let c = 0; c < NUM_CORES; c++) {
      for (let seq = 1; seq <= cores[c].acked; seq++) {
        const v = seen[c].get(seq);
        const want = cores[c].values[seq - 1];
        if (want === null) continue;
        if (v === undefined || !_equal(v, want)) {
          throw new Error(`core ${c}: acknowledged sequence ${seq} lost or changed by recovery`);
        }
      }
    }
    return seen;
  };

  const powerLoss = async () => {
    result.powerLosses++;
    lose();
    if (failures.length > 0) throw failures[0];
    // 1. The real recovery, read only.
    let seen = await recoverAll();
    // Now and then a repairing recovery first (as `wal repair` would), which may itself lose
    // power at any of its operations.
    for (let again = 0; rand() < 0.3; again++) {
      const crashAt = again < 3 && rand() < 0.5 ? Math.floor(rand() * 8) : undefined;
      io.crashAfter(crashAt);
      result.recoveryRuns++;
      try {
        seen = await recoverAll(true);
      } catch (e) {
        if (!io.crashed || !isSimulatedCrash(e)) throw e;
      }
      if (!io.crashed) {
        io.crashAfter(undefined);
        break;
      }
      result.recoveryCrashes++;
      result.powerLosses++;
      trace?.(`repairing recovery lost power at operation ${crashAt}`);
      lose();
      seen = await recoverAll();
    }
    // 2. The real reopen (cuts the crash tail), which may itself lose power at any of its
    // operations (then recovery again, and reopen again), 3. the validating reader on what it
    // left.
    for (let again = 0;; again++) {
      const crashAt = again < 3 && rand() < 0.5 ? Math.floor(rand() * 12) : undefined;
      io.crashAfter(crashAt);
      try {
        await openAll();
      } catch (e) {
        if (!io.crashed || !isSimulatedCrash(e)) throw e;
      }
      // The process may also die in work an open left running (a segment's layout ahead).
      if (!io.crashed) {
        io.crashAfter(undefined);
        break;
      }
      result.reopenCrashes++;
      result.powerLosses++;
      trace?.(`reopen lost power at operation ${crashAt}`);
      lose();
      seen = await recoverAll();
    }
    for (let c = 0; c < NUM_CORES; c++) {
      const m = cores[c];
      // The reopened log's last sequence; its segments (those no checkpoint retired) hold a
      // contiguous run of records ending there, recovery every put up to it.
      const last = m.log.sequence;
      const entries = await readCore(config, c);
      const first = entries.length === 0 ? last + 1 : entries[0].sequence;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        const seq = first + i;
        const op = e.operation;
        const want = m.values[seq - 1];
        if (e.sequence !== seq || seq > last) {
          throw new Error(`core ${c}: entry ${i} has sequence ${e.sequence}, ${seq} expected`);
        }
        if (want === null) {
          if (op.type !== "epochBarrier") {
            throw new Error(`core ${c} sequence ${seq}: not a barrier`);
          }
          continue;
        }
        if (op.type !== "put" || want === undefined || !_equal(op.value, want)) {
          throw new Error(`core ${c} sequence ${seq}: bytes never appended there`);
        }
        if (decoder.decode(op.key) !== `c${c}-s${seq}`) {
          throw new Error(`core ${c} sequence ${seq}: wrong key`);
        }
      }
      if (entries.length > 0 && first + entries.length - 1 !== last) {
        throw new Error(
          `core ${c}: the segments end at ${first + entries.length - 1}, not ${last}`,
        );
      }
      let puts = 0;
      for (let seq = 1; seq <= last; seq++) {
        const want = m.values[seq - 1];
        if (want === null) continue;
        puts++;
        const r = seen[c].get(seq);
        if (want === undefined || r === undefined || !_equal(r, want)) {
          throw new Error(`core ${c} sequence ${seq}: recovery and the reopened log disagree`);
        }
      }
      if (seen[c].size !== puts) {
        throw new Error(
          `core ${c}: recovery has ${seen[c].size} records, the reopened log ${puts}`,
        );
      }
      if (last < m.acked) {
        throw new Error(
          `core ${c}: ${last} records after power loss, ${m.acked} were acknowledged`,
        );
      }
      result.unacknowledgedSurvivors += last - m.acked;
      trace?.(`core ${c}: ${m.acked} acknowledged, ${last} recovered (segments from ${first})`);
      m.values.length = last;
      m.acked = last;
    }
  };

  /**
   * A checkpoint, on chains completing on their own (in order); it may lose power at any of its
   * operations (then the power-loss checks run). A finished one makes its barriers durable.
   */
  const checkpoint = async () => {
    result.checkpoints++;
    io.auto = true;
    while (io.completeOne()) await ticks();
    const crashAt = rand() < 0.6 ? Math.floor(rand() * 30) : undefined;
    io.crashAfter(crashAt);
    let meta;
    let reached = "started";
    try {
      meta = await coordinator!.checkpoint({
        onStep: (step) => {
          reached = step;
          if (step === "retiring") result.checkpointsRetiring++;
        },
      });
    } catch (e) {
      const busy = e instanceof PerCoreWalError && e.code === "Backpressure";
      if (!busy && !(io.crashed && isSimulatedCrash(e))) throw e;
    }
    io.auto = false;
    if (io.crashed) {
      result.checkpointCrashes++;
      result.checkpointCrashSteps[reached] = (result.checkpointCrashSteps[reached] ?? 0) + 1;
      trace?.(`checkpoint lost power at operation ${crashAt}`);
      await powerLoss();
      return;
    }
    io.crashAfter(undefined);
    if (meta === undefined) return;
    result.checkpointsDone++;
    for (const at of meta.walPositions) {
      cores[at.coreId].acked = Math.max(cores[at.coreId].acked, at.sequence);
    }
    trace?.(`checkpoint ${meta.id} at epoch ${meta.epoch}`);
  };

  const previousOps = replaceDurabilityOps(io.ops);
  try {
    await openAll();
    for (let step = 0; step < result.steps; step++) {
      const x = rand();
      const c = Math.floor(rand() * NUM_CORES);
      const m = cores[c];
      if (x < 0.4) {
        const n = 1 + Math.floor(rand() * 4);
        for (let i = 0; i < n; i++) {
          const seq = m.values.length + 1;
          const value = new Uint8Array(Math.floor(rand() * rand() * 2000));
          for (let j = 0; j < value.length; j += 97) value[j] = 1 + Math.floor(rand() * 255);
          try {
            const got = m.log.appendPut(`c${c}-s${seq}`, value);
            if (got !== seq) throw new Error(`core ${c}: append got sequence ${got}`);
          } catch (e) {
            if (e instanceof PerCoreWalError && e.code === "Backpressure") break;
            throw e;
          }
          m.values.push(value);
          result.recordsAppended++;
        }
        trace?.(`step ${step}: core ${c} appended through ${m.values.length}`);
      } else if (x < 0.6) {
        const upTo = m.values.length;
        const log = m.log;
        const losses = result.powerLosses;
        log.sync().then(() => {
          // A sync of a log lost to a power loss never resolves; one that does is acknowledged.
          if (cores[c].log === log && upTo > cores[c].acked) {
            result.recordsAcknowledged += upTo - cores[c].acked;
            cores[c].acked = upTo;
          }
        }, (e) => {
          // Errors of a log lost to a power loss (its files are gone) do not count.
          if (result.powerLosses === losses && !io.crashed) failures.push(e);
        });
        trace?.(`step ${step}: core ${c} sync through ${upTo}`);
      } else if (x < 0.95) {
        io.completeOne();
        await ticks();
      } else if (x < 0.97) {
        await checkpoint();
      } else {
        await powerLoss();
      }
    }
    await powerLoss();
    // Close: complete whatever the logs still submit (the segment prepared ahead).
    let closed = false;
    const closing = Promise.all(cores.map((m) => m.log.close())).finally(() => closed = true);
    for (let i = 0; !closed; i++) {
      if (i > 100_000) throw new Error("close() does not finish");
      io.completeOne();
      await ticks();
    }
    await closing;
  } catch (e) {
    throw new Error(
      `power-loss seed ${seed} failed: ${e instanceof Error ? e.message : e}\n` +
        `replay: SEED=${seed} deno task test:powerloss --trace`,
      { cause: e },
    );
  } finally {
    result.layoutChains = io.layoutChains;
    result.durableWriteChains = io.durableWriteChains;
    result.extensionChains = io.extensionChains;
    result.piecewiseFiles = io.fsOps.writable;
    result.lockFiles = io.fsOps.createNew;
    replaceDurabilityOps(previousOps);
    await io.close();
  }
  return result;
}

function _equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
