/**
 * `CheckpointCoordinator`: checkpoints of the WAL's key/value state, written atomically, and the
 * retirement of the segments they cover.
 *
 * A checkpoint at epoch e: (1) advances the epoch and writes a barrier on every core, and waits
 * until every barrier is durable; (2) builds the state as of e from the previous checkpoint and
 * the merged entries of epochs up to e; (3) writes it into a temporary directory, fsyncs,
 * renames, fsyncs the parent; (4) only then retires the segments every retained checkpoint
 * covers. A crash between any two steps leaves a directory that recovery turns into the same
 * state.
 *
 * @module
 */

import {
  APP_STATE_FILE,
  checkpointDirEntries,
  type CheckpointMetadata,
  checkpointName,
  type CheckpointPosition,
  defaultCheckpointDir,
  encodeManifest,
  isCheckpointLeftoverName,
  listValidCheckpoints,
  MANIFEST_FILE,
  nextCheckpointId,
  STATE_FILE,
} from "./checkpoint_store.ts";
import { raceSignal, signalOf, throwIfAborted } from "./abort.ts";
import { chooseWalCheckpoint } from "./checkpoint_choice.ts";
import { retirableSegments, shippedFloor } from "./ship_retention.ts";
import { withMapsAsJson } from "./numbers.ts";
import { type Committed, foldOperation } from "./commit_fold.ts";
import { directoryMode } from "./config.ts";
import { crc32c } from "./crc32c.ts";
import { ensureDirectory, listCoreSegments } from "./segment_files.ts";
import { PerCoreWalError } from "./errors.ts";
import { checkOptionKeys } from "./option_keys.ts";
import { toPath } from "./path_arg.ts";
import {
  lstatIfExists,
  makeDirectory,
  removePath,
  renamePath,
  syncDirectory,
  writeSyncedFile,
} from "./fs.ts";
import type { PerCoreWalManager } from "./manager.ts";
import { CoreCursor } from "./merge.ts";
import { mergeCursors } from "./merge_stream.ts";
import { ChangeSet, StateFile, StateFileWriter } from "./state_file.ts";

// Recovery, the CLI scan and mod.ts import these from here. They live in checkpoint_store.ts,
// which the read side can import without loading the coordinator's merge and engine imports.
export {
  type CheckpointMetadata,
  type CheckpointPosition,
  type CheckpointReport,
  chooseCheckpoint,
  defaultCheckpointDir,
  readCheckpoint,
  verifyCheckpointFiles,
} from "./checkpoint_store.ts";

/**
 * The steps of a checkpoint, for {@linkcode CheckpointRunOptions.onStep}.
 *
 * @example
 * ```ts
 * import type { CheckpointStep } from "@percore/wal";
 *
 * const log = (step: CheckpointStep) => console.log(step === "done" ? "checkpoint durable" : step);
 * log("barriersDurable");
 * ```
 */
export type CheckpointStep = "barriersDurable" | "stateWritten" | "renamed" | "retiring" | "done";

/**
 * Options of {@linkcode CheckpointCoordinator}.
 *
 * @example
 * ```ts
 * import {
 *   CheckpointCoordinator,
 *   type CheckpointCoordinatorOptions,
 *   PerCoreWalConfig,
 *   PerCoreWalManager,
 * } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const options: CheckpointCoordinatorOptions = { checkpointDir: "./data/checkpoints", retain: 5 };
 * const coordinator = new CheckpointCoordinator(manager, options);
 * ```
 */
export interface CheckpointCoordinatorOptions {
  /**
   * Where checkpoints go. Default: the manager's own `checkpointDir` (given to its `open()`), else
   * a `checkpoints` folder inside the WAL directory (checkpoints of the old default beside it are
   * built on until the first new one: FORMAT.md section 11). The manager's `open()` checks its
   * segments against the newest checkpoint in its `checkpointDir`, or the default directory:
   * give a directory other than the default to `open()` too. A path or a `file:` URL.
   */
  checkpointDir?: string | URL;
  /** How many checkpoints to keep (at least 1). Default 3. */
  retain?: number;
  /** Memory for collecting changes before spilling sorted runs to disk. Default 64 MiB. */
  maxMemoryBytes?: number;
}

/**
 * Options of one checkpoint.
 *
 * @example
 * ```ts
 * import {
 *   CheckpointCoordinator,
 *   type CheckpointRunOptions,
 *   PerCoreWalConfig,
 *   PerCoreWalManager,
 * } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const options: CheckpointRunOptions = {
 *   state: (epoch) => new TextEncoder().encode(`my snapshot as of epoch ${epoch}`),
 *   onStep: (step) => console.log("checkpoint step:", step),
 * };
 * await new CheckpointCoordinator(manager).checkpoint(options);
 * ```
 */
export interface CheckpointRunOptions {
  /** The application's own snapshot: bytes, or a function of the checkpoint's epoch. */
  state?: Uint8Array | ((epoch: number) => Uint8Array | Promise<Uint8Array>);
  /** Called after each step (tests inject crashes here). */
  onStep?: (step: CheckpointStep) => void | Promise<void>;
  /**
   * Stops the checkpoint before it is renamed into place: it rejects with `signal.reason` and
   * leaves no checkpoint (its temporary directory removed, no segment retired); a later one
   * works. Once renamed (step `"renamed"`), the checkpoint exists and finishes. A checkpoint
   * waiting for a running one stops waiting at once.
   */
  signal?: AbortSignal;
}

/** The checkpoint running (or last run) for each manager. */
const _running = new WeakMap<PerCoreWalManager, Promise<unknown>>();

/**
 * Coordinates checkpoints across every core of a {@linkcode PerCoreWalManager}.
 *
 * @example
 * ```ts ignore
 * import { CheckpointCoordinator, PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const coordinator = new CheckpointCoordinator(manager, { retain: 3 });
 * manager.writer(0).appendPut("k", "v");
 * const meta = await coordinator.checkpoint({ state: new TextEncoder().encode("my snapshot") });
 * console.log(meta.id, meta.epoch, meta.walPositions);
 * ```
 */
export class CheckpointCoordinator {
  /** Where checkpoints are written. */
  readonly checkpointDir: string;
  /** How many are kept. */
  readonly retain: number;
  readonly #manager: PerCoreWalManager;
  readonly #maxMemoryBytes: number;
  /** Whether `checkpointDir` was given (else the default, with the old default's migration). */
  readonly #customDir: boolean;
  /** The checkpoint this coordinator wrote last: built on without checking its files again. */
  #lastWritten: CheckpointMetadata | undefined;

  /** A coordinator for `manager`'s WAL. */
  constructor(manager: PerCoreWalManager, options: CheckpointCoordinatorOptions = {}) {
    checkOptionKeys(options, "CheckpointCoordinatorOptions");
    this.#manager = manager;
    const custom = options.checkpointDir === undefined
      ? manager.checkpointDir
      : toPath(options.checkpointDir, "checkpointDir");
    this.checkpointDir = custom ?? defaultCheckpointDir(manager.config.baseDir);
    this.#customDir = custom !== undefined;
    const retain = options.retain ?? 3;
    if (!Number.isInteger(retain) || retain < 1) {
      throw new RangeError(`retain must be an integer ≥ 1, got ${retain}`);
    }
    this.retain = retain;
    this.#maxMemoryBytes = options.maxMemoryBytes ?? 64 * 1024 * 1024;
  }

  /**
   * Takes a checkpoint. Checkpoints of one manager run one at a time, whatever coordinator
   * starts them: a second call waits for the first.
   */
  checkpoint(options: CheckpointRunOptions = {}): Promise<CheckpointMetadata> {
    let signal: AbortSignal | undefined;
    try {
      checkOptionKeys(options, "CheckpointRunOptions");
      signal = signalOf(options);
    } catch (e) {
      return Promise.reject(e);
    }
    const before = _running.get(this.#manager) ?? Promise.resolve();
    // An abort while queued ends the wait at once; the next checkpoint still waits for `before`.
    const run = raceSignal(before, signal).then(() => this.#checkpoint(options, signal));
    _running.set(this.#manager, Promise.allSettled([before, run]));
    return run;
  }

  async #checkpoint(
    options: CheckpointRunOptions,
    signal: AbortSignal | undefined,
  ): Promise<CheckpointMetadata> {
    throwIfAborted(signal);
    const config = this.#manager.config;
    // Its entry fsynced: checkpoints lead to deletions.
    ensureDirectory(this.checkpointDir, { ...config.options, what: "Checkpoint directory" });
    const previous = await this.#previousCheckpoint();
    throwIfAborted(signal);
    // 1. A barrier on every core; wait until every one is durable. An abort here leaves the
    // barriers (ordinary records, durable soon): a later checkpoint writes its own.
    const { epoch, ends } = await this.#writeBarriers(options.onStep, signal);
    throwIfAborted(signal);
    // 2. The state as of `epoch`: the previous state and the entries since, merged.
    // Ids go on from the checkpoint built on, even one of the old default directory.
    const id = Math.max(nextCheckpointId(this.checkpointDir), (previous?.id ?? 0) + 1);
    const final = `${this.checkpointDir}/${checkpointName(id)}`;
    const tmp = `${final}.tmp`;
    this.#makeTemporaryDirectory(tmp);
    let renamed = false;
    try {
      const meta = await this.#build(options, signal, { id, epoch, ends, previous, tmp, final });
      // 3. Atomically in place: from here on the checkpoint exists and is finished.
      throwIfAborted(signal);
      renamePath(tmp, final);
      renamed = true;
      syncDirectory(this.checkpointDir);
      await options.onStep?.("renamed");
      // 4. Retire what every retained checkpoint covers.
      await this.#retire(options.onStep);
      this.#lastWritten = meta;
      await options.onStep?.("done");
      return meta;
    } catch (e) {
      // A checkpoint that failed before its rename leaves nothing (the next one would remove
      // the leftover anyway; an aborted one must not leave it for the caller to see).
      if (!renamed) removePath(tmp, { recursive: true });
      throw e;
    }
  }

  /**
   * Steps 2 and 3 up to the rename: merges the state as of `epoch` into `tmp` and writes its
   * manifest (fsynced). Checks `signal` between entries and steps.
   */
  async #build(
    options: CheckpointRunOptions,
    signal: AbortSignal | undefined,
    at: {
      id: number;
      epoch: number;
      ends: { segment: number; offset: number }[];
      previous: CheckpointMetadata | undefined;
      tmp: string;
      final: string;
    },
  ): Promise<CheckpointMetadata> {
    const { id, epoch, ends, previous, tmp, final } = at;
    const config = this.#manager.config;
    const committed: Committed = {
      offsets: new Map(previous?.offsets ?? []),
      watermarks: new Map(previous?.watermarks ?? []),
      watermark: previous?.watermark,
    };
    const changes = new ChangeSet(tmp, this.#maxMemoryBytes);
    const cursors = await this.#openCursors(previous, ends, epoch);
    const entriesMerged = await _mergeEntries(cursors, changes, committed, signal);
    throwIfAborted(signal);
    const walPositions = _barrierPositions(cursors, epoch);
    let previousState: StateFile | undefined;
    try {
      previousState = previous === undefined
        ? undefined
        : StateFile.open(`${previous.path}/${STATE_FILE}`);
      const written = await this.#writeStateFiles(
        tmp,
        changes,
        previousState,
        epoch,
        options.state,
        signal,
      );
      const meta: CheckpointMetadata = withMapsAsJson({
        id,
        epoch,
        walPositions,
        entriesMerged,
        stateEntries: written.stateEntries,
        offsets: committed.offsets,
        watermark: committed.watermark,
        watermarks: committed.watermarks,
        path: final,
        createdAt: new Date(),
        previousId: previous?.id,
        hasAppState: options.state !== undefined,
        files: written.files,
        walId: this.#manager.walId,
      });
      throwIfAborted(signal);
      writeSyncedFile(`${tmp}/${MANIFEST_FILE}`, encodeManifest(meta), config.options.fileMode);
      syncDirectory(tmp);
      await options.onStep?.("stateWritten");
      return meta;
    } finally {
      previousState?.close();
    }
  }

  /**
   * The checkpoint to build on: one of this WAL whose files pass their checksums (as recovery
   * would choose; never another WAL's), unless it is the one this coordinator wrote last.
   */
  async #previousCheckpoint(): Promise<CheckpointMetadata | undefined> {
    const trusted = this.#lastWritten;
    const latest = this.#ownCheckpoints().at(-1);
    if (trusted !== undefined && latest?.id === trusted.id) return trusted;
    const dir = this.#customDir ? this.checkpointDir : undefined;
    return (await chooseWalCheckpoint(this.#manager.config, this.#manager.walId, dir)).checkpoint;
  }

  /**
   * This WAL's valid checkpoints in `checkpointDir`, oldest first: the only ones retained,
   * deleted, or counted for the retirement of segments (another WAL's, or a legacy one that
   * names no WAL, are never touched).
   */
  #ownCheckpoints(): CheckpointMetadata[] {
    return listValidCheckpoints(this.checkpointDir).filter((m) => m.walId === this.#manager.walId);
  }

  /**
   * Advances the epoch and writes a barrier on every core; resolves when every barrier is
   * durable, with the epoch the checkpoint closes and where each core's durable records end.
   */
  async #writeBarriers(
    onStep: CheckpointRunOptions["onStep"],
    signal: AbortSignal | undefined,
  ): Promise<{ epoch: number; ends: { segment: number; offset: number }[] }> {
    const manager = this.#manager;
    const epoch = manager.epoch;
    manager.advanceEpoch();
    const barriers = manager.writeEpochBarrierAll();
    await Promise.all(barriers.map((seq, c) => manager.writer(c).waitDurable(seq, { signal })));
    await onStep?.("barriersDurable");
    return { epoch, ends: manager.syncedPositions() };
  }

  /** Clears what interrupted checkpoints left and creates the new one's temporary directory. */
  #makeTemporaryDirectory(tmp: string): void {
    _removeLeftovers(this.checkpointDir);
    makeDirectory(tmp, { mode: directoryMode(this.#manager.config.options.fileMode) });
  }

  /** One cursor per core, from the previous checkpoint's barrier to the durable end. */
  async #openCursors(
    previous: CheckpointMetadata | undefined,
    ends: { segment: number; offset: number }[],
    epoch: number,
  ): Promise<CoreCursor[]> {
    const config = this.#manager.config;
    const cursors: CoreCursor[] = [];
    try {
      for (let c = 0; c < config.numCores; c++) {
        // A core added since the previous checkpoint has no position there: all of it is new.
        const start = previous?.walPositions[c];
        cursors.push(
          await CoreCursor.open(config, c, {
            start: start &&
              { segment: start.segment, offset: start.offset, sequence: start.sequence },
            end: { segment: ends[c].segment, offset: ends[c].offset },
            toEpoch: epoch,
            requireBeginning: start === undefined,
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
   * Writes the merged state file into `tmp`, and the application's snapshot when there is one;
   * returns what the manifest lists.
   */
  async #writeStateFiles(
    tmp: string,
    changes: ChangeSet,
    previousState: StateFile | undefined,
    epoch: number,
    appState: CheckpointRunOptions["state"],
    signal: AbortSignal | undefined,
  ): Promise<{ stateEntries: number; files: CheckpointMetadata["files"] }> {
    const fileMode = this.#manager.config.options.fileMode;
    const summary = changes.mergeInto(
      previousState,
      StateFileWriter.create(`${tmp}/${STATE_FILE}`, fileMode),
    );
    const files = [{ name: STATE_FILE, size: summary.size, crc32c: summary.crc32c }];
    if (appState !== undefined) {
      const bytes = typeof appState === "function"
        ? await raceSignal(Promise.resolve(appState(epoch)), signal)
        : appState;
      if (!(bytes instanceof Uint8Array)) {
        throw new TypeError("state must be a Uint8Array or return one");
      }
      writeSyncedFile(`${tmp}/${APP_STATE_FILE}`, bytes, fileMode);
      files.push({ name: APP_STATE_FILE, size: bytes.length, crc32c: crc32c(bytes) });
    }
    return { stateEntries: summary.entries, files };
  }

  async #retire(onStep?: CheckpointRunOptions["onStep"]): Promise<void> {
    const all = this.#ownCheckpoints();
    for (const old of all.slice(0, Math.max(0, all.length - this.retain))) {
      removePath(old.path, { recursive: true });
    }
    const kept = all.slice(-this.retain);
    if (kept.length === 0) return;
    const oldest = kept[0];
    const config = this.#manager.config;
    // Registered shippers hold what they have not shipped (their marks files, read now).
    const shipped = shippedFloor(config.baseDir, this.#manager.walId);
    let first = true;
    for (let c = 0; c < config.numCores; c++) {
      // A core the oldest checkpoint does not know (added since) keeps every segment.
      const keepFrom = oldest.walPositions[c]?.segment;
      if (keepFrom === undefined) continue;
      const segs = listCoreSegments(config, c);
      for (const s of retirableSegments(segs, keepFrom, shipped?.floor(c))) {
        removePath(s.path);
        if (first) {
          first = false;
          await onStep?.("retiring");
        }
      }
    }
    syncDirectory(config.baseDir);
    syncDirectory(this.checkpointDir);
  }

  /** Every valid checkpoint of this WAL in `checkpointDir`, oldest first. */
  listCheckpoints(): Promise<CheckpointMetadata[]> {
    return Promise.resolve(this.#ownCheckpoints());
  }

  /**
   * Removes all but the `keep` newest checkpoints of this WAL (and leftovers of interrupted ones
   * named as the module names them; never another WAL's checkpoints); returns
   * how many went. Waits for a running checkpoint.
   */
  cleanupOldCheckpoints(keep: number): Promise<number> {
    if (!Number.isInteger(keep) || keep < 1) {
      return Promise.reject(new RangeError(`keep must be ≥ 1, got ${keep}`));
    }
    const before = _running.get(this.#manager) ?? Promise.resolve();
    const run = before.then(() => this.#cleanup(keep));
    _running.set(this.#manager, run.catch(() => {}));
    return run;
  }

  #cleanup(keep: number): number {
    let removed = _removeLeftovers(this.checkpointDir);
    const all = this.#ownCheckpoints();
    for (const old of all.slice(0, Math.max(0, all.length - keep))) {
      removePath(old.path, { recursive: true });
      removed++;
    }
    syncDirectory(this.checkpointDir);
    return removed;
  }
}

/**
 * Removes what interrupted checkpoints left (never renamed, so never used): directories named
 * exactly as the module names them (`ckpt-NNNNNNNNNN.tmp`), never another `*.tmp` of the
 * application, and never through a symbolic link (lstat: a link of that name stays, and what it
 * names is untouched). Returns how many went.
 */
function _removeLeftovers(dir: string): number {
  let removed = 0;
  for (const name of checkpointDirEntries(dir)) {
    if (!isCheckpointLeftoverName(name)) continue;
    const path = `${dir}/${name}`;
    const info = lstatIfExists(path);
    if (info === undefined || !info.isDirectory || info.isSymlink) continue;
    removePath(path, { recursive: true });
    removed++;
  }
  return removed;
}

/** Feeds the merged entries into `changes` and `committed`; returns how many there were. */
async function _mergeEntries(
  cursors: CoreCursor[],
  changes: ChangeSet,
  committed: Committed,
  signal: AbortSignal | undefined,
): Promise<number> {
  let merged = 0;
  const change = (key: Uint8Array, value: Uint8Array | undefined) => changes.set(key, value);
  // Leaving the loop (an abort) closes the cursors (mergeCursors' finally).
  for await (const { entry } of mergeCursors(cursors)) {
    if ((merged & 1023) === 0) throwIfAborted(signal);
    merged++;
    foldOperation(entry.operation, committed, change);
  }
  return merged;
}

/** Where each core's barrier of `epoch + 1` lies: the next checkpoint's replay starts there. */
function _barrierPositions(cursors: CoreCursor[], epoch: number): CheckpointPosition[] {
  return cursors.map((cur, c): CheckpointPosition => {
    const b = cur.stoppedAt;
    if (b === undefined) {
      throw new PerCoreWalError(
        "Corrupted",
        `Checkpoint: core ${c}'s barrier of epoch ${epoch + 1} was not found`,
        {
          coreId: c,
        },
      );
    }
    return { coreId: c, segment: b.segment, offset: b.offset, sequence: b.entry.sequence };
  });
}
