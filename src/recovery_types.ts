/**
 * What recovery returns and takes: its modes and options, the report of what it found in each
 * segment and did about it, and the recovered state. Apart from the recovery run
 * (`recovery.ts`) so that the CLI and callers read the shapes without the run.
 *
 * @module
 */

import type { CheckpointMetadata, CheckpointReport } from "./checkpoint_store.ts";
import { toKey } from "./format.ts";
import { compareBytes, keyString, type StateFile } from "./state_file.ts";
import type { Bytes, PerCoreWalEntry } from "./types.ts";

/**
 * What damage does:
 * - `"tolerateTornTail"` (default): an incomplete last record, or preallocated zeros, ends a core
 *   (and is cut, with fsync); corruption anywhere else refuses with a `PerCoreWalError` naming
 *   segment and offset.
 * - `"strict"`: any damage, a torn tail included, refuses.
 * - `"pointInTime"`: corruption or a missing segment stops replay on every core before the epoch
 *   in which the first such damage lies, so that the state is that of a whole epoch.
 * - `"salvage"`: damaged records are skipped (each reported) and replay goes on after them.
 *
 * @example
 * ```ts
 * import { recoverPerCore, type RecoveryMode } from "@percore/wal";
 *
 * const mode: RecoveryMode = "pointInTime"; // stop before the first damaged epoch, on every core
 * using recovered = await recoverPerCore("./data/wal", { mode, readOnly: true });
 * console.log(recovered.stoppedBeforeEpoch);
 * ```
 */
export type RecoveryMode = "tolerateTornTail" | "strict" | "pointInTime" | "salvage";

/**
 * Options of recovery.
 *
 * @example
 * ```ts
 * import { recoverPerCore, type RecoveryOptions } from "@percore/wal";
 *
 * let puts = 0;
 * const options: RecoveryOptions = {
 *   mode: "strict",
 *   readOnly: true,
 *   onEntry: (entry) => void (entry.operation.type === "put" && puts++),
 * };
 * using recovered = await recoverPerCore("./data/wal", options);
 * console.log(puts, recovered.finalEpoch);
 * ```
 */
export interface RecoveryOptions {
  /**
   * Where the checkpoints are; `false` replays the whole WAL. Default: the `checkpoints` folder
   * inside the WAL directory, or, when it holds no checkpoint of this WAL, the old default
   * `checkpoints` beside it (FORMAT.md section 11). Only this WAL's checkpoints are used: one of
   * another WAL (its `walId`) is reported "foreign" in `checkpointReport` and ignored.
   */
  checkpointDir?: string | false;
  /** What damage does. Default `"tolerateTornTail"`. */
  mode?: RecoveryMode;
  /**
   * Change nothing on disk (no lock taken, no torn tail cut): works on a directory in use.
   * Default false.
   */
  readOnly?: boolean;
  /** Called with every replayed entry, in merge order (to rebuild the application's own state). */
  onEntry?: (entry: PerCoreWalEntry) => void;
  /**
   * Stops recovery (and `repairAllSegments`) before it changes anything: it rejects with
   * `signal.reason` and returns nothing; no torn tail is cut, no file repaired, the lock is
   * released. Once repairs have begun (they are short and synchronous) they finish.
   */
  signal?: AbortSignal;
}

/**
 * What was found in a segment.
 *
 * @example
 * ```ts
 * import { recoverPerCore, type SegmentStatus } from "@percore/wal";
 *
 * using recovered = await recoverPerCore("./data/wal", { readOnly: true });
 * const damaged: SegmentStatus[] = ["corrupted", "missing"];
 * console.log(recovered.report.some((s) => damaged.includes(s.status)));
 * ```
 */
export type SegmentStatus =
  | "clean"
  | "zeroTail"
  | "tornTail"
  | "corrupted"
  | "unstarted"
  | "missing"
  | "extra";

/**
 * What recovery did (or, read-only, would do) about it.
 *
 * @example
 * ```ts
 * import { recoverPerCore, type RepairAction } from "@percore/wal";
 *
 * using recovered = await recoverPerCore("./data/wal", { readOnly: true });
 * const actions: RepairAction[] = recovered.report.map((s) => s.action);
 * console.log(actions.filter((a) => a !== "none").length, "segments need a repair");
 * ```
 */
export type RepairAction =
  | "none"
  | "truncated"
  | "refused"
  | "replayStopped"
  | "skipped";

/**
 * One line of the recovery report.
 *
 * @example
 * ```ts
 * import { PerCoreRecoveryManager, PerCoreWalConfig, type SegmentReport } from "@percore/wal";
 *
 * const recovery = new PerCoreRecoveryManager(new PerCoreWalConfig("./data/wal", 2));
 * const report: SegmentReport[] = await recovery.repairAllSegments();
 * for (const s of report) console.log(s.path, s.status, s.action, s.offset ?? "");
 * ```
 */
export interface SegmentReport {
  /** The core. */
  coreId: number;
  /** The segment file. */
  path: string;
  /** Its index. */
  segmentIndex: number;
  /** What was found. */
  status: SegmentStatus;
  /** Where (for damage). */
  offset?: number;
  /** Why (for damage). */
  reason?: string;
  /** Entries replayed from it. */
  entries: number;
  /** What was done. */
  action: RepairAction;
  /** Whether the action changed the files (false when read-only or nothing to do). */
  applied: boolean;
}

export type { CheckpointReport };

/**
 * The key/value state: the checkpoint's state file, with the replayed changes over it.
 *
 * @example
 * ```ts
 * import { recoverPerCore, type RecoveredState } from "@percore/wal";
 *
 * using recovered = await recoverPerCore("./data/wal");
 * const state: RecoveredState = recovered.state;
 * const decoder = new TextDecoder();
 * for (const [key, value] of state) console.log(decoder.decode(key), value.length);
 * console.log(state.has("user:1"), state.get("user:1"));
 * ```
 */
export class RecoveredState implements Iterable<[Uint8Array, Uint8Array]> {
  readonly #base: StateFile | undefined;
  readonly #overlay: Map<string, { key: Uint8Array; value: Uint8Array | undefined }>;
  /** How many keys hold a value. */
  readonly size: number;

  /** Internal: built by recovery. */
  constructor(
    base: StateFile | undefined,
    overlay: Map<string, { key: Uint8Array; value: Uint8Array | undefined }>,
  ) {
    this.#base = base;
    this.#overlay = overlay;
    let size = base?.entries ?? 0;
    for (const { key, value } of overlay.values()) {
      const before = base?.get(key) !== undefined;
      size += (value !== undefined ? 1 : 0) - (before ? 1 : 0);
    }
    this.size = size;
  }

  /** The value of `key`, or undefined. */
  get(key: Bytes): Uint8Array | undefined {
    const k = toKey(key);
    const o = this.#overlay.get(keyString(k));
    if (o !== undefined) return o.value;
    return this.#base?.get(k);
  }

  /** Whether `key` holds a value. */
  has(key: Bytes): boolean {
    return this.get(key) !== undefined;
  }

  /** Every key and value, in key byte order. */
  *[Symbol.iterator](): IterableIterator<[Uint8Array, Uint8Array]> {
    const over = [...this.#overlay.keys()].sort().map((k) => this.#overlay.get(k)!);
    let i = 0;
    for (const [k, v] of this.#base ?? []) {
      while (i < over.length && compareBytes(over[i].key, k) < 0) {
        if (over[i].value !== undefined) yield [over[i].key, over[i].value!];
        i++;
      }
      if (i < over.length && compareBytes(over[i].key, k) === 0) {
        if (over[i].value !== undefined) yield [over[i].key, over[i].value!];
        i++;
      } else if (v !== undefined) {
        yield [k, v];
      }
    }
    for (; i < over.length; i++) {
      if (over[i].value !== undefined) yield [over[i].key, over[i].value!];
    }
  }

  /** Every key and value, in key byte order: the iterator, named as on a `Map`. */
  entries(): IterableIterator<[Uint8Array, Uint8Array]> {
    return this[Symbol.iterator]();
  }

  /** Every key, in byte order. */
  *keys(): IterableIterator<Uint8Array> {
    for (const [k] of this) yield k;
  }

  /** Every value, in the byte order of its key. */
  *values(): IterableIterator<Uint8Array> {
    for (const [, v] of this) yield v;
  }

  /** Closes the checkpoint's state file. */
  close(): void {
    this.#base?.close();
  }

  /** For `JSON.stringify`: the number of keys (the keys and values themselves may be large). */
  toJSON(): { size: number } {
    return { size: this.size };
  }
}

/**
 * Where replay ended on one core.
 *
 * @example
 * ```ts
 * import { recoverPerCore, type ReplayPosition } from "@percore/wal";
 *
 * using recovered = await recoverPerCore("./data/wal");
 * const ends: ReplayPosition[] = recovered.walPositions;
 * console.log(ends.map((p) => `core ${p.coreId} ends at sequence ${p.sequence}`));
 * ```
 */
export interface ReplayPosition {
  /** The core. */
  coreId: number;
  /** Segment of the end of the last replayed record (or the checkpoint's barrier). */
  segment: number;
  /** Offset after it. */
  offset: number;
  /** Its sequence (0 when none). */
  sequence: number;
}

/**
 * The result of recovery.
 *
 * @example
 * ```ts
 * import { type PerCoreRecoveredState, recoverPerCore } from "@percore/wal";
 *
 * using recovered: PerCoreRecoveredState = await recoverPerCore("./data/wal");
 * console.log(recovered.checkpoint?.id, recovered.entriesReplayed, recovered.state.size);
 * ```
 */
export interface PerCoreRecoveredState {
  /** The checkpoint used, if any. */
  checkpoint?: CheckpointMetadata;
  /** The key/value state. */
  state: RecoveredState;
  /** The application's own snapshot bytes from the checkpoint, if it had some. */
  appState?: Uint8Array;
  /** Latest committed offset per source. */
  offsets: Map<string, number>;
  /** The latest committed watermark. */
  watermark?: number;
  /** The latest watermark committed with each source. */
  watermarks: Map<string, number>;
  /** Where replay ended on each core. */
  walPositions: ReplayPosition[];
  /** Entries replayed after the checkpoint. */
  entriesReplayed: number;
  /** Largest epoch seen. */
  finalEpoch: number;
  /** Per segment: what was found and done. */
  report: SegmentReport[];
  /** Per checkpoint considered: used, invalid (and why), older, or foreign (of another WAL). */
  checkpointReport: CheckpointReport[];
  /** The epoch replay stopped before, in point-in-time mode, if damage was found. */
  stoppedBeforeEpoch?: number;
  /** Closes the state's file. */
  close(): void;
  /** Closes the state's file. */
  [Symbol.dispose](): void;
}
