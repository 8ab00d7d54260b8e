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

import { directoryMode } from "./config.ts";
import { crc32c, crc32cUpdate } from "./crc32c.ts";
import { ensureDirectory, listCoreSegments } from "./segment_files.ts";
import { PerCoreWalError } from "./errors.ts";
import { SyncBackend } from "./io/sync.ts";
import type { PerCoreWalManager } from "./manager.ts";
import { CoreCursor } from "./merge.ts";
import { mergeCursors } from "./merge_stream.ts";
import { ChangeSet, StateFile, StateFileWriter } from "./state_file.ts";

/**
 * Where a checkpoint's barrier lies on one core: replay starts there.
 *
 * @example
 * ```ts
 * import { type CheckpointPosition, CheckpointCoordinator, PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const meta = await new CheckpointCoordinator(manager).checkpoint();
 * const starts: CheckpointPosition[] = meta.walPositions; // where replay begins on each core
 * console.log(starts.map((p) => `core ${p.coreId}: segment ${p.segment} offset ${p.offset}`));
 * ```
 */
export interface CheckpointPosition {
  /** The core. */
  coreId: number;
  /** Segment index of the barrier. */
  segment: number;
  /** Offset of the barrier in the segment. */
  offset: number;
  /** Sequence of the barrier. */
  sequence: bigint;
}

/**
 * What a checkpoint holds.
 *
 * @example
 * ```ts
 * import {
 *   CheckpointCoordinator,
 *   type CheckpointMetadata,
 *   PerCoreWalConfig,
 *   PerCoreWalManager,
 * } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const meta: CheckpointMetadata = await new CheckpointCoordinator(manager).checkpoint();
 * console.log(`checkpoint ${meta.id}: epoch ${meta.epoch}, ${meta.stateEntries} keys at ${meta.path}`);
 * ```
 */
export interface CheckpointMetadata {
  /** Increasing id. */
  id: number;
  /** Every entry of this epoch or earlier is in the state. */
  epoch: bigint;
  /** Per core, the barrier that begins epoch + 1 (replay starts there). */
  walPositions: CheckpointPosition[];
  /** Entries merged into this checkpoint since the previous one. */
  entriesMerged: number;
  /** Keys in the state. */
  stateEntries: number;
  /** Latest committed offset per source. */
  offsets: Map<string, bigint>;
  /** The latest watermark committed, if any. */
  watermark?: bigint;
  /** The latest watermark committed with each source. */
  watermarks: Map<string, bigint>;
  /** The checkpoint's directory. */
  path: string;
  /** When it was written. */
  createdAt: Date;
  /** The checkpoint it was built on. */
  previousId?: number;
  /** Whether it holds the application's own snapshot bytes (`app.bin`). */
  hasAppState: boolean;
  /** Its files, sizes and CRC32Cs. */
  files: { name: string; size: number; crc32c: number }[];
}

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
  /** Where checkpoints go. Default: a `checkpoints` folder beside the WAL directory. */
  checkpointDir?: string;
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
  state?: Uint8Array | ((epoch: bigint) => Uint8Array | Promise<Uint8Array>);
  /** Called after each step (tests inject crashes here). */
  onStep?: (step: CheckpointStep) => void | Promise<void>;
}

/** The checkpoint running (or last run) for each manager. */
const _running = new WeakMap<PerCoreWalManager, Promise<unknown>>();

const MANIFEST = "manifest.json";
const STATE = "state.kv";
const APP = "app.bin";

/** The default checkpoint directory of a WAL directory: `checkpoints` beside it. */
export function defaultCheckpointDir(walDir: string): string {
  const i = walDir.lastIndexOf("/");
  return i <= 0 ? `${i === 0 ? "" : "."}/checkpoints` : `${walDir.slice(0, i)}/checkpoints`;
}

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
  readonly #maxMemory: number;
  #lastWritten: CheckpointMetadata | undefined;

  /** A coordinator for `manager`'s WAL. */
  constructor(manager: PerCoreWalManager, options: CheckpointCoordinatorOptions = {}) {
    this.#manager = manager;
    this.checkpointDir = options.checkpointDir ?? defaultCheckpointDir(manager.config.baseDir);
    const retain = options.retain ?? 3;
    if (!Number.isInteger(retain) || retain < 1) {
      throw new RangeError(`retain must be an integer ≥ 1, got ${retain}`);
    }
    this.retain = retain;
    this.#maxMemory = options.maxMemoryBytes ?? 64 * 1024 * 1024;
  }

  /**
   * Takes a checkpoint. Checkpoints of one manager run one at a time, whatever coordinator
   * starts them: a second call waits for the first.
   */
  checkpoint(options: CheckpointRunOptions = {}): Promise<CheckpointMetadata> {
    const before = _running.get(this.#manager) ?? Promise.resolve();
    const run = before.then(() => this.#checkpoint(options));
    _running.set(this.#manager, run.catch(() => {}));
    return run;
  }

  async #checkpoint(o: CheckpointRunOptions): Promise<CheckpointMetadata> {
    const m = this.#manager;
    const config = m.config;
    // Its entry fsynced: checkpoints lead to deletions.
    ensureDirectory(this.checkpointDir, { ...config.options, what: "Checkpoint directory" });
    // Build on a checkpoint whose files pass their checksums (as recovery would choose), unless
    // it is the one this coordinator wrote last.
    const trusted = this.#lastWritten;
    const latest = latestCheckpoint(this.checkpointDir);
    const prev = trusted !== undefined && latest?.id === trusted.id
      ? trusted
      : chooseCheckpoint(this.checkpointDir).checkpoint;
    // 1. A barrier on every core; wait until every one is durable.
    const epoch = m.epoch;
    m.advanceEpoch();
    const barriers = m.writeEpochBarrierAll();
    await Promise.all(barriers.map((seq, c) => m.writer(c).waitDurable(seq)));
    await o.onStep?.("barriersDurable");
    const ends = m.syncedPositions();
    // 2. The state as of `epoch`: the previous state and the entries since, merged.
    const id = nextCheckpointId(this.checkpointDir);
    const final = `${this.checkpointDir}/${_name(id)}`;
    const tmp = `${final}.tmp`;
    for (const n of _entries(this.checkpointDir)) {
      // Left by an interrupted checkpoint: never renamed, so never used.
      if (n.endsWith(".tmp")) Deno.removeSync(`${this.checkpointDir}/${n}`, { recursive: true });
    }
    Deno.mkdirSync(tmp, { mode: directoryMode(config.options.fileMode) });
    const offsets = new Map(prev?.offsets ?? []);
    const watermarks = new Map(prev?.watermarks ?? []);
    let watermark = prev?.watermark;
    const changes = new ChangeSet(tmp, this.#maxMemory);
    const cursors: CoreCursor[] = [];
    try {
      for (let c = 0; c < config.numCores; c++) {
        // A core added since the previous checkpoint has no position there: all of it is new.
        const start = prev?.walPositions[c];
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
    let merged = 0;
    for await (const { entry } of mergeCursors(cursors)) {
      merged++;
      const op = entry.operation;
      if (op.type === "put") changes.set(op.key, op.value);
      else if (op.type === "delete") changes.set(op.key, undefined);
      else if (op.type === "commit") {
        for (const [name, off] of op.offsets) {
          offsets.set(name, off);
          if (op.watermark !== undefined) watermarks.set(name, op.watermark);
        }
        if (op.watermark !== undefined) watermark = op.watermark;
      }
    }
    const walPositions = cursors.map((cur, c): CheckpointPosition => {
      const b = cur.stoppedAt;
      if (b === undefined) {
        throw new PerCoreWalError(
          "Corrupted",
          `Checkpoint: core ${c}'s barrier of epoch ${epoch + 1n} was not found`,
          {
            coreId: c,
          },
        );
      }
      return { coreId: c, segment: b.segment, offset: b.offset, sequence: b.entry.sequence };
    });
    let previousState: StateFile | undefined;
    try {
      previousState = prev === undefined ? undefined : StateFile.open(`${prev.path}/${STATE}`);
      const summary = changes.mergeInto(
        previousState,
        StateFileWriter.create(`${tmp}/${STATE}`, config.options.fileMode),
      );
      const files = [{ name: STATE, size: summary.size, crc32c: summary.crc32c }];
      if (o.state !== undefined) {
        const bytes = typeof o.state === "function" ? await o.state(epoch) : o.state;
        if (!(bytes instanceof Uint8Array)) {
          throw new TypeError("state must be a Uint8Array or return one");
        }
        _writeSynced(`${tmp}/${APP}`, bytes, config.options.fileMode);
        files.push({ name: APP, size: bytes.length, crc32c: crc32c(bytes) });
      }
      const meta: CheckpointMetadata = {
        id,
        epoch,
        walPositions,
        entriesMerged: merged,
        stateEntries: summary.entries,
        offsets,
        watermark,
        watermarks,
        path: final,
        createdAt: new Date(),
        previousId: prev?.id,
        hasAppState: o.state !== undefined,
        files,
      };
      _writeSynced(`${tmp}/${MANIFEST}`, _encodeManifest(meta), config.options.fileMode);
      const sync = new SyncBackend();
      sync.syncDirectory(tmp);
      await o.onStep?.("stateWritten");
      // 3. Atomically in place.
      Deno.renameSync(tmp, final);
      sync.syncDirectory(this.checkpointDir);
      await o.onStep?.("renamed");
      // 4. Retire what every retained checkpoint covers.
      await this.#retire(o.onStep);
      this.#lastWritten = meta;
      await o.onStep?.("done");
      return meta;
    } finally {
      previousState?.close();
    }
  }

  async #retire(onStep?: CheckpointRunOptions["onStep"]): Promise<void> {
    const all = listValidCheckpoints(this.checkpointDir);
    for (const old of all.slice(0, Math.max(0, all.length - this.retain))) {
      Deno.removeSync(old.path, { recursive: true });
    }
    const kept = all.slice(-this.retain);
    if (kept.length === 0) return;
    const oldest = kept[0];
    const config = this.#manager.config;
    let first = true;
    for (let c = 0; c < config.numCores; c++) {
      // A core the oldest checkpoint does not know (added since) keeps every segment.
      const keepFrom = oldest.walPositions[c]?.segment;
      if (keepFrom === undefined) continue;
      for (const s of listCoreSegments(config, c)) {
        if (s.index >= keepFrom) break;
        Deno.removeSync(s.path);
        if (first) {
          first = false;
          await onStep?.("retiring");
        }
      }
    }
    const sync = new SyncBackend();
    sync.syncDirectory(config.baseDir);
    sync.syncDirectory(this.checkpointDir);
  }

  /** Every valid checkpoint, oldest first. */
  listCheckpoints(): Promise<CheckpointMetadata[]> {
    return Promise.resolve(listValidCheckpoints(this.checkpointDir));
  }

  /**
   * Removes all but the `keep` newest checkpoints (and leftovers of interrupted ones); returns
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
    let removed = 0;
    for (const e of _entries(this.checkpointDir)) {
      if (e.endsWith(".tmp")) {
        Deno.removeSync(`${this.checkpointDir}/${e}`, { recursive: true });
        removed++;
      }
    }
    const all = listValidCheckpoints(this.checkpointDir);
    for (const old of all.slice(0, Math.max(0, all.length - keep))) {
      Deno.removeSync(old.path, { recursive: true });
      removed++;
    }
    new SyncBackend().syncDirectory(this.checkpointDir);
    return removed;
  }
}

function _name(id: number): string {
  return `ckpt-${String(id).padStart(10, "0")}`;
}

function _entries(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** The id after every checkpoint directory present, valid or not. */
export function nextCheckpointId(dir: string): number {
  let max = 0;
  for (const n of _entries(dir)) {
    const m = /^ckpt-(\d+)(\.tmp)?$/.exec(n);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

/** Why a checkpoint directory is not usable, or its metadata. */
export function readCheckpoint(path: string): CheckpointMetadata | { invalid: string } {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(`${path}/${MANIFEST}`);
  } catch (e) {
    return {
      invalid: e instanceof Deno.errors.NotFound ? "no manifest" : `manifest unreadable: ${e}`,
    };
  }
  const meta = _decodeManifest(bytes, path);
  if ("invalid" in meta) return meta;
  for (const f of meta.files) {
    let size: number;
    try {
      size = Deno.statSync(`${path}/${f.name}`).size;
    } catch {
      return { invalid: `${f.name} is missing` };
    }
    if (size !== f.size) {
      return { invalid: `${f.name} has ${size} bytes, the manifest says ${f.size}` };
    }
  }
  return meta;
}

/** Checks the files of a checkpoint against the CRC32Cs in its manifest (reads them whole). */
export function verifyCheckpointFiles(meta: CheckpointMetadata): string | undefined {
  for (const f of meta.files) {
    const path = `${meta.path}/${f.name}`;
    let crc = 0xffffffff;
    const file = Deno.openSync(path, { read: true });
    try {
      const buf = new Uint8Array(1 << 20);
      while (true) {
        const n = file.readSync(buf);
        if (n === null) break;
        crc = crc32cUpdate(crc, buf, 0, n);
      }
    } finally {
      file.close();
    }
    if ((~crc >>> 0) !== f.crc32c) return `${f.name} fails its checksum`;
  }
  return undefined;
}

/** Every checkpoint of `dir` whose manifest and file sizes are valid, oldest first. */
export function listValidCheckpoints(dir: string): CheckpointMetadata[] {
  const out: CheckpointMetadata[] = [];
  for (const n of _entries(dir).sort()) {
    if (!/^ckpt-\d+$/.test(n)) continue;
    const m = readCheckpoint(`${dir}/${n}`);
    if (!("invalid" in m)) out.push(m);
  }
  return out.sort((a, b) => a.id - b.id);
}

/** The newest valid checkpoint of `dir`, if any. */
export function latestCheckpoint(dir: string): CheckpointMetadata | undefined {
  return listValidCheckpoints(dir).at(-1);
}

function _writeSynced(path: string, bytes: Uint8Array, mode: number): void {
  const f = Deno.openSync(path, { write: true, create: true, truncate: true, mode });
  try {
    let done = 0;
    while (done < bytes.length) done += f.writeSync(bytes.subarray(done));
    f.syncSync();
  } finally {
    f.close();
  }
}

// The manifest: JSON (bigints as decimal strings), a newline, and the CRC32C of the JSON in hex.
function _encodeManifest(m: CheckpointMetadata): Uint8Array {
  const body = JSON.stringify(
    {
      version: 1,
      id: m.id,
      epoch: String(m.epoch),
      createdAt: m.createdAt.toISOString(),
      previousId: m.previousId ?? null,
      walPositions: m.walPositions.map((p) => ({ ...p, sequence: String(p.sequence) })),
      entriesMerged: m.entriesMerged,
      stateEntries: m.stateEntries,
      offsets: Object.fromEntries([...m.offsets].map(([k, v]) => [k, String(v)])),
      watermark: m.watermark === undefined ? null : String(m.watermark),
      watermarks: Object.fromEntries([...m.watermarks].map(([k, v]) => [k, String(v)])),
      hasAppState: m.hasAppState,
      files: m.files,
    },
    null,
    2,
  );
  const json = new TextEncoder().encode(body);
  return new TextEncoder().encode(`${body}\n${crc32c(json).toString(16).padStart(8, "0")}\n`);
}

function _decodeManifest(
  bytes: Uint8Array,
  path: string,
): CheckpointMetadata | { invalid: string } {
  const text = new TextDecoder().decode(bytes);
  const m = /^([\s\S]*)\n([0-9a-f]{8})\n$/.exec(text);
  if (m === null) return { invalid: "manifest is torn (no checksum line)" };
  if (crc32c(new TextEncoder().encode(m[1])) !== parseInt(m[2], 16)) {
    return { invalid: "manifest fails its checksum" };
  }
  try {
    const j = JSON.parse(m[1]);
    if (j.version !== 1) return { invalid: `manifest version ${j.version}` };
    return {
      id: j.id,
      epoch: BigInt(j.epoch),
      walPositions: j.walPositions.map((p: CheckpointPosition & { sequence: string }) => ({
        coreId: p.coreId,
        segment: p.segment,
        offset: p.offset,
        sequence: BigInt(p.sequence),
      })),
      entriesMerged: j.entriesMerged,
      stateEntries: j.stateEntries,
      offsets: new Map(
        Object.entries(j.offsets as Record<string, string>).map(([k, v]) => [k, BigInt(v)]),
      ),
      watermark: j.watermark === null ? undefined : BigInt(j.watermark),
      watermarks: new Map(
        Object.entries(j.watermarks as Record<string, string>).map(([k, v]) => [k, BigInt(v)]),
      ),
      path,
      createdAt: new Date(j.createdAt),
      previousId: j.previousId ?? undefined,
      hasAppState: j.hasAppState,
      files: j.files,
    };
  } catch (e) {
    return { invalid: `manifest does not parse: ${e}` };
  }
}

/**
 * What happened to each checkpoint considered.
 *
 * @example
 * ```ts
 * import { type CheckpointReport, recoverPerCore } from "@percore/wal";
 *
 * using recovered = await recoverPerCore("./data/wal");
 * const invalid: CheckpointReport[] = recovered.checkpointReport.filter((c) => c.status === "invalid");
 * for (const c of invalid) console.warn(`skipped ${c.path}: ${c.reason}`);
 * ```
 */
export interface CheckpointReport {
  /** The checkpoint's directory. */
  path: string;
  /** "used", "invalid" (skipped, with the reason), or "older" (not needed). */
  status: "used" | "invalid" | "older";
  /** Why it is invalid. */
  reason?: string;
}

/**
 * The newest checkpoint of `dir` whose manifest, file sizes, file CRCs and state file structure
 * are valid, and what was found of the others (newest first).
 */
export function chooseCheckpoint(
  dir: string | undefined,
): { checkpoint?: CheckpointMetadata; checkpointReport: CheckpointReport[] } {
  const checkpointReport: CheckpointReport[] = [];
  if (dir === undefined) return { checkpointReport };
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /^ckpt-\d+$/.test(n)).sort()
      .reverse();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { checkpointReport };
    throw e;
  }
  let checkpoint: CheckpointMetadata | undefined;
  for (const n of names) {
    const path = `${dir}/${n}`;
    if (checkpoint !== undefined) {
      checkpointReport.push({ path, status: "older" });
      continue;
    }
    const m = readCheckpoint(path);
    let why = "invalid" in m ? m.invalid : verifyCheckpointFiles(m);
    if (why === undefined && !("invalid" in m)) {
      try {
        StateFile.open(`${path}/state.kv`).close();
      } catch (e) {
        why = e instanceof Error ? e.message : String(e);
      }
    }
    if (why !== undefined || "invalid" in m) {
      checkpointReport.push({ path, status: "invalid", reason: why });
      continue;
    }
    checkpoint = m;
    checkpointReport.push({ path, status: "used" });
  }
  return { checkpoint, checkpointReport };
}
