/**
 * Recovery: the newest valid checkpoint plus the WAL replayed from its barriers, merged across
 * cores by `(epoch, timestampNs, coreId, sequence)`:
 *
 *     Checkpoint(epoch) + WAL.replay(epoch..current) = consistent state
 *
 * Four modes decide what damage does (after RocksDB's WAL recovery modes); every segment gets a
 * line in the report saying what was found and what was done.
 *
 * @module
 */

import { checkSignal, throwIfAborted } from "./abort.ts";
import { type CheckpointMetadata, readAppState } from "./checkpoint_store.ts";
import { type Committed, foldOperation } from "./commit_fold.ts";
import { withMapsAsJson } from "./numbers.ts";
import { parseSegmentFileName, PerCoreWalConfig } from "./config.ts";
import { asideName, setTailAside } from "./crash_tail.ts";
import { listCoreSegments, refuseSymlink } from "./segment_files.ts";
import { PerCoreWalError } from "./errors.ts";
import { readDirectory, renamePath, syncDirectory } from "./fs.ts";
import { lockWalDirectory, unlockWalDirectory } from "./lock.ts";
import { CoreCursor, type SegmentEnd } from "./merge.ts";
import { mergeCursors } from "./merge_stream.ts";
import { scanSegment } from "./segment_probes.ts";
import {
  type PerCoreRecoveredState,
  RecoveredState,
  type RecoveryMode,
  type RecoveryOptions,
  type ReplayPosition,
  type SegmentReport,
} from "./recovery_types.ts";
import { ByteArena, keyString, StateFile } from "./state_file.ts";
import type { SegmentStats } from "./types.ts";
import { configFromDirectory, readWalMeta } from "./wal_meta.ts";
import { chooseWalCheckpoint } from "./checkpoint_choice.ts";
import { damageAt } from "./segment_message.ts";
import { checkOptionKeys } from "./option_keys.ts";

/**
 * Recovers a WAL directory: checkpoint plus replay. Also verifies and repairs segments.
 *
 * @example
 * ```ts ignore
 * import { PerCoreRecoveryManager, PerCoreWalConfig } from "@percore/wal";
 *
 * const r = new PerCoreRecoveryManager(new PerCoreWalConfig("./data/wal", 2), { mode: "pointInTime" });
 * using recovered = await r.recover();
 * console.log(recovered.state.size, recovered.finalEpoch, recovered.report);
 * ```
 */
export class PerCoreRecoveryManager {
  /** The WAL's configuration. */
  readonly config: PerCoreWalConfig;
  readonly #o: RecoveryOptions;

  /** A recovery of `config`'s directory. */
  constructor(config: PerCoreWalConfig, options: RecoveryOptions = {}) {
    if (!(config instanceof PerCoreWalConfig)) {
      throw new TypeError("config must be a PerCoreWalConfig");
    }
    checkOptionKeys(options, "RecoveryOptions");
    const mode = options.mode ?? "tolerateTornTail";
    if (!["tolerateTornTail", "strict", "pointInTime", "salvage"].includes(mode)) {
      throw new RangeError(
        `mode must be tolerateTornTail, strict, pointInTime or salvage, got ${mode}`,
      );
    }
    checkSignal(options.signal);
    this.config = config;
    this.#o = { ...options, mode };
  }

  /** The newest valid checkpoint plus the WAL from its barriers. */
  recover(): Promise<PerCoreRecoveredState> {
    return this.#run(true, true);
  }

  /** The whole WAL, ignoring checkpoints (segments a checkpoint retired are gone). */
  recoverWalOnly(): Promise<PerCoreRecoveredState> {
    return this.#run(false, true);
  }

  /** Applies the mode's decisions to the files (with fsync), and reports them. */
  async repairAllSegments(): Promise<SegmentReport[]> {
    if (this.#o.mode === "salvage") {
      throw new PerCoreWalError(
        "Unsupported",
        "salvage does not repair files in place (it keeps records after damage that a repaired log " +
          "could not hold): recover() with it returns what survives; repair with pointInTime",
      );
    }
    if (this.#o.readOnly) {
      throw new PerCoreWalError(
        "Unsupported",
        "repairAllSegments() changes files: do not pass readOnly",
      );
    }
    using r = await this.#run(true, false);
    return r.report;
  }

  /** Statistics of every segment of every core (read-only). */
  async segmentStats(): Promise<SegmentStats[]> {
    const out: SegmentStats[] = [];
    for (let c = 0; c < this.config.numCores; c++) {
      const segs = listCoreSegments(this.config, c);
      for (let i = 0; i < segs.length; i++) {
        const r = await scanSegment(segs[i].path, {
          maxRecordBytes: this.config.options.maxRecordBytes,
          isLastSegment: i === segs.length - 1,
          laterSegments: segs.slice(i + 1).map((x) => x.path),
        });
        if (r.header !== undefined) out.push(r.stats);
      }
    }
    return out;
  }

  async #run(useCheckpoint: boolean, buildState: boolean): Promise<PerCoreRecoveredState> {
    const o = this.#o;
    const mode = o.mode!;
    const config = this.config;
    const signal = o.signal;
    throwIfAborted(signal);
    if (!config.options.allowSymlinks) refuseSymlink(config.baseDir, "WAL directory");
    const lock = o.readOnly ? undefined : lockWalDirectory(config.baseDir, config.options.fileMode);
    let base: StateFile | undefined;
    try {
      const report: SegmentReport[] = [];
      // This WAL's own checkpoint, never another WAL's (FORMAT.md section 11).
      const { checkpoint, checkpointReport } = useCheckpoint
        ? await chooseWalCheckpoint(config, readWalMeta(config.baseDir)?.walId, o.checkpointDir)
        : {
          checkpoint: undefined,
          checkpointReport: [],
        };
      throwIfAborted(signal);
      base = checkpoint === undefined ? undefined : StateFile.open(`${checkpoint.path}/state.kv`);
      const appState = checkpoint?.hasAppState ? readAppState(checkpoint) : undefined;
      this.#extraSegments(report, mode);
      const starts = Array.from({ length: config.numCores }, (_, c) => checkpoint?.walPositions[c]);
      // Point in time: find the epoch of the first damage on any core, then replay up to it.
      let cutoff: number | undefined;
      if (mode === "pointInTime") cutoff = await this.#damageEpoch(starts, checkpoint?.epoch);
      throwIfAborted(signal);
      const positions: ReplayPosition[] = starts.map((s, c) => ({
        coreId: c,
        segment: s?.segment ?? 0,
        offset: s?.offset ?? 0,
        sequence: s === undefined ? 0 : s.sequence - 1,
      }));
      const cursors = await this.#openCursors(starts, checkpoint === undefined, cutoff, report);
      if (checkpoint !== undefined) this.#checkBarriers(cursors, checkpoint, report);
      const replay = await this.#replay(cursors, checkpoint, positions, buildState);
      if (cutoff !== undefined) this.#reportStops(report, cursors, cutoff);
      // The last point to stop: the repairs below change files.
      throwIfAborted(signal);
      if (!o.readOnly) this.#repair(report, mode, cursors, cutoff);
      const state = new RecoveredState(base, replay.overlay);
      const result: PerCoreRecoveredState = withMapsAsJson({
        checkpoint,
        state,
        appState,
        offsets: replay.offsets,
        watermark: replay.watermark,
        watermarks: replay.watermarks,
        walPositions: positions,
        entriesReplayed: replay.replayed,
        finalEpoch: replay.finalEpoch,
        report,
        checkpointReport,
        stoppedBeforeEpoch: cutoff,
        close: () => state.close(),
        [Symbol.dispose]: () => state.close(),
      });
      base = undefined;
      return result;
    } finally {
      base?.close();
      if (lock !== undefined) unlockWalDirectory(lock);
    }
  }

  /**
   * One cursor per core from its checkpoint position (or its beginning), with the damage
   * policies of the mode; gaps are reported as they are found. Closes them all if one fails.
   */
  async #openCursors(
    starts: (CheckpointMetadata["walPositions"][number] | undefined)[],
    requireBeginning: boolean,
    cutoff: number | undefined,
    report: SegmentReport[],
  ): Promise<CoreCursor[]> {
    const mode = this.#o.mode!;
    const cursors: CoreCursor[] = [];
    try {
      for (let c = 0; c < this.config.numCores; c++) {
        const s = starts[c];
        cursors.push(
          await CoreCursor.open(this.config, c, {
            start: s && { segment: s.segment, offset: s.offset, sequence: s.sequence },
            toEpoch: cutoff === undefined ? undefined : cutoff - 1,
            requireBeginning,
            onTorn: mode === "strict" ? "throw" : "stop",
            onCorrupt: mode === "salvage" ? "skip" : mode === "pointInTime" ? "stop" : "throw",
            onGap: mode === "salvage" ? "skip" : mode === "pointInTime" ? "stop" : "throw",
            onGapFound: (g) =>
              report.push({
                coreId: c,
                path: g.path,
                segmentIndex: g.segment,
                status: "missing",
                reason: g.reason,
                entries: 0,
                action: mode === "salvage"
                  ? "skipped"
                  : mode === "pointInTime"
                  ? "replayStopped"
                  : "refused",
                applied: false,
              }),
            onSegmentEnd: (end) => report.push(_segmentLine(c, end, mode)),
          }),
        );
      }
    } catch (e) {
      for (const cur of cursors) cur.close();
      throw e;
    }
    return cursors;
  }

  /**
   * Each core's log must go on from the checkpoint: the first record at its `walPositions` is the
   * barrier that began the epoch after the checkpoint's. Anything else (no record, another
   * sequence, another record) means the core's segments are not the log the checkpoint was taken
   * of (deleted and started over, or another WAL's checkpoint): replaying them on the checkpoint's
   * state would serve a stale or foreign state. Refused in every mode but salvage, which reports
   * it and goes on.
   */
  #checkBarriers(
    cursors: CoreCursor[],
    checkpoint: CheckpointMetadata,
    report: SegmentReport[],
  ): void {
    const mode = this.#o.mode!;
    for (const cur of cursors) {
      const at = checkpoint.walPositions[cur.coreId];
      if (at === undefined) continue;
      const first = cur.entry ?? cur.stoppedAt?.entry;
      const op = first?.operation;
      if (
        first !== undefined && first.sequence === at.sequence && op?.type === "epochBarrier" &&
        op.epoch > checkpoint.epoch
      ) continue;
      const path = this.config.segmentPath(cur.coreId, at.segment);
      const found = first === undefined
        ? "no record"
        : `a ${op!.type} record of sequence ${first.sequence}`;
      const reason = `checkpoint ${checkpoint.id} (epoch ${checkpoint.epoch}) says core ` +
        `${cur.coreId}'s log goes on with the barrier of sequence ${at.sequence} at offset ` +
        `${at.offset}, but the segment holds ${found} there: its segments are not the log the ` +
        `checkpoint was taken of`;
      report.push({
        coreId: cur.coreId,
        path,
        segmentIndex: at.segment,
        status: "missing",
        offset: at.offset,
        reason,
        entries: 0,
        action: mode === "salvage" ? "skipped" : "refused",
        applied: false,
      });
      if (mode !== "salvage") {
        for (const c of cursors) c.close();
        throw new PerCoreWalError("Corrupted", `Segment "${path}": ${reason}`, {
          coreId: cur.coreId,
          segment: path,
          offset: at.offset,
        });
      }
    }
  }

  /**
   * Replays the merged cursors (and closes them): advances `positions`, folds the puts and
   * deletes into an overlay of the checkpoint's state (when `buildState`) and the commit
   * records into the consumer offsets.
   */
  async #replay(
    cursors: CoreCursor[],
    checkpoint: CheckpointMetadata | undefined,
    positions: ReplayPosition[],
    buildState: boolean,
  ) {
    const overlay = new Map<string, { key: Uint8Array; value: Uint8Array | undefined }>();
    // Copies into an arena of its own: decoded views would pin the decoder's shared arenas.
    const kept = new ByteArena();
    const committed: Committed = {
      offsets: new Map(checkpoint?.offsets ?? []),
      watermarks: new Map(checkpoint?.watermarks ?? []),
      watermark: checkpoint?.watermark,
    };
    const change = (key: Uint8Array, value: Uint8Array | undefined) =>
      overlay.set(keyString(key), {
        key: kept.copy(key),
        value: value === undefined ? undefined : kept.copy(value),
      });
    let replayed = 0;
    let finalEpoch = checkpoint?.epoch ?? 0;
    const signal = this.#o.signal;
    // Leaving the loop (an abort) closes the cursors (mergeCursors' finally).
    for await (const p of mergeCursors(cursors)) {
      if ((replayed & 1023) === 0) throwIfAborted(signal);
      const e = p.entry;
      replayed++;
      if (e.epoch > finalEpoch) finalEpoch = e.epoch;
      positions[e.coreId] = {
        coreId: e.coreId,
        segment: p.segment,
        offset: p.offset + p.length,
        sequence: e.sequence,
      };
      this.#o.onEntry?.(e);
      if (buildState) foldOperation(e.operation, committed, change);
    }
    const { offsets, watermarks, watermark } = committed;
    return { overlay, offsets, watermarks, watermark, replayed, finalEpoch };
  }

  /** Point in time: a line for each core where replay stopped before the cutoff epoch. */
  #reportStops(report: SegmentReport[], cursors: CoreCursor[], cutoff: number): void {
    for (const cur of cursors) {
      const at = cur.stoppedAt;
      if (at === undefined) continue;
      report.push({
        coreId: cur.coreId,
        path: this.config.segmentPath(cur.coreId, at.segment),
        segmentIndex: at.segment,
        status: "clean",
        offset: at.offset,
        reason: `replay stopped before epoch ${cutoff} (point in time)`,
        entries: 0,
        action: "replayStopped",
        applied: false,
      });
    }
  }

  /** Segment files of cores beyond `numCores`. */
  #extraSegments(report: SegmentReport[], mode: RecoveryMode): void {
    for (const e of readDirectory(this.config.baseDir)) {
      const p = parseSegmentFileName(this.config.options.segmentPattern, e.name);
      if (p === undefined || p.coreId < this.config.numCores) continue;
      const line: SegmentReport = {
        coreId: p.coreId,
        path: `${this.config.baseDir}/${e.name}`,
        segmentIndex: p.segment,
        status: "extra",
        reason: `a segment of core ${p.coreId}, beyond the WAL's ${this.config.numCores} cores`,
        entries: 0,
        action: mode === "strict" ? "refused" : "skipped",
        applied: false,
      };
      report.push(line);
      if (mode === "strict") {
        throw new PerCoreWalError(
          "Corrupted",
          `Unexpected segment "${line.path}": ${line.reason}`,
          { segment: line.path },
        );
      }
    }
  }

  /** The epoch of the first corruption or missing segment on any core (point in time). */
  async #damageEpoch(
    starts: (CheckpointMetadata["walPositions"][number] | undefined)[],
    checkpointEpoch: number | undefined,
  ): Promise<number | undefined> {
    let cutoff: number | undefined;
    for (let c = 0; c < this.config.numCores; c++) {
      const s = starts[c];
      let epoch = s === undefined ? 0 : (checkpointEpoch ?? 0) + 1;
      let damaged = false;
      const cur = await CoreCursor.open(this.config, c, {
        start: s && { segment: s.segment, offset: s.offset, sequence: s.sequence },
        onCorrupt: "stop",
        onGap: "stop",
        requireBeginning: s === undefined,
        onGapFound: () => damaged = true,
        onSegmentEnd: (end) => {
          if (end.end.kind === "corrupted") damaged = true;
        },
      });
      try {
        while (cur.current !== undefined) {
          epoch = cur.current.entry.epoch;
          const p = cur.advance();
          if (p !== undefined) await p;
        }
      } finally {
        cur.close();
      }
      if (damaged && (cutoff === undefined || epoch < cutoff)) cutoff = epoch;
    }
    return cutoff;
  }

  /**
   * Applies the decisions recorded in the report to the files: torn tails are cut; in point in
   * time, every core is cut before the cutoff epoch and later segments are put aside. Cores
   * without damage are cut first and damaged ones last, so that a crash during the repair
   * leaves the damage for a rerun to find (and the same cutoff).
   */
  #repair(
    report: SegmentReport[],
    _mode: RecoveryMode,
    cursors: CoreCursor[],
    cutoff: number | undefined,
  ): void {
    let dirty = false;
    // One action for a crash tail and for a point-in-time or damage cut: the later segments put
    // aside (durably), then the segment cut (src/crash_tail.ts).
    const cutCore = (coreId: number, segment: number, offset: number, path?: string) => {
      const later = listCoreSegments(this.config, coreId).filter((s) => s.index > segment);
      const begin = { path: path ?? this.config.segmentPath(coreId, segment), offset };
      setTailAside(this.config.baseDir, begin, later);
    };
    for (const line of report) {
      if (line.status === "tornTail" && line.action === "truncated") {
        // A crash tail may begin before the last segment (batches of a rotation in flight).
        cutCore(line.coreId, line.segmentIndex, line.offset!, line.path);
        line.applied = true;
      }
    }
    const damaged = report.filter((l) =>
      l.action === "replayStopped" && (l.status === "corrupted" || l.status === "missing")
    );
    const damagedCores = new Set(damaged.map((l) => l.coreId));
    const order = [...cursors].sort((x, y) =>
      Number(damagedCores.has(x.coreId)) - Number(damagedCores.has(y.coreId))
    );
    for (const cur of order) {
      const at = cutoff === undefined ? undefined : cur.stoppedAt;
      if (at !== undefined) {
        cutCore(cur.coreId, at.segment, at.offset);
        const line = report.find((l) =>
          l.coreId === cur.coreId && l.action === "replayStopped" && l.offset === at.offset
        );
        if (line) line.applied = true;
      }
      for (const line of damaged.filter((l) => l.coreId === cur.coreId)) {
        if (at !== undefined) {
          line.applied = true; // cut before it already
          continue;
        }
        if (line.status === "corrupted") {
          cutCore(line.coreId, line.segmentIndex, line.offset!);
        } else {
          // A missing segment: everything from the segment after the gap on is put aside.
          for (const s of listCoreSegments(this.config, line.coreId)) {
            if (s.index >= line.segmentIndex) renamePath(s.path, asideName(s.path));
          }
          dirty = true;
        }
        line.applied = true;
      }
    }
    if (dirty) syncDirectory(this.config.baseDir);
  }
}

function _segmentLine(coreId: number, s: SegmentEnd, mode: RecoveryMode): SegmentReport {
  const base = {
    coreId,
    path: s.path,
    segmentIndex: s.segment,
    entries: s.entries,
    applied: false,
  };
  const end = s.end;
  if (s.skipped.length > 0) {
    return {
      ...base,
      status: "corrupted",
      offset: s.skipped[0].offset,
      reason: s.skipped.length === 1
        ? s.skipped[0].reason
        : s.skipped.map((k) => damageAt(k.offset, k.reason)).join("; "),
      action: "skipped",
    };
  }
  switch (end.kind) {
    case "end":
      if (end.offset === 0) return { ...base, status: "unstarted", action: "none" };
      return {
        ...base,
        status: end.preallocatedBytes > 0 ? "zeroTail" : "clean",
        offset: end.offset,
        action: "none",
      };
    case "torn":
      return {
        ...base,
        status: "tornTail",
        offset: end.offset,
        reason: end.reason,
        action: "truncated",
      };
    case "corrupted":
      return {
        ...base,
        status: "corrupted",
        offset: end.offset,
        reason: end.reason,
        action: mode === "pointInTime"
          ? "replayStopped"
          : mode === "salvage"
          ? "skipped"
          : "refused",
      };
  }
}

/**
 * Recovers the WAL in `walDir` (cores and segment pattern from its `wal.json`): the newest valid
 * checkpoint of this WAL in `options.checkpointDir` (default: `checkpoints` inside the WAL
 * directory, or the old default beside it: FORMAT.md section 11) plus
 * the WAL from its barriers, or the whole WAL without one.
 *
 * @example
 * ```ts ignore
 * import { recoverPerCore } from "@percore/wal";
 *
 * using r = await recoverPerCore("./data/wal");
 * console.log(r.state.get("user:1"), r.offsets, r.entriesReplayed);
 * ```
 */
export function recoverPerCore(
  walDir: string | URL,
  options: RecoveryOptions = {},
): Promise<PerCoreRecoveredState> {
  try {
    checkOptionKeys(options, "RecoveryOptions");
    return new PerCoreRecoveryManager(configFromDirectory(walDir), options).recover();
  } catch (e) {
    // A promise-returning function reports through its promise (a bad wal.json, say).
    return Promise.reject(e);
  }
}
