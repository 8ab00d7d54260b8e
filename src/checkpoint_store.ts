/**
 * The checkpoints on disk: one directory each (`ckpt-NNNNNNNNNN`), holding the state file, the
 * application's snapshot and a manifest that names them with their sizes and CRC32Cs. How they
 * are named, listed, read, verified and chosen; the coordinator that writes them is in
 * `checkpoint.ts`. Every file-system call goes through `fs.ts`.
 *
 * @module
 */

import { crc32c, crc32cUpdate } from "./crc32c.ts";
import {
  isMissing,
  lstatIfExists,
  openRegularFile,
  readDirectory,
  readRegularFile,
  readSome,
} from "./fs.ts";
import { PerCoreWalError } from "./errors.ts";
import { withMapsAsJson } from "./numbers.ts";
import { StateFile } from "./state_file.ts";

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
  sequence: number;
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
  epoch: number;
  /** Per core, the barrier that begins epoch + 1 (replay starts there). */
  walPositions: CheckpointPosition[];
  /** Entries merged into this checkpoint since the previous one. */
  entriesMerged: number;
  /** Keys in the state. */
  stateEntries: number;
  /** Latest committed offset per source. */
  offsets: Map<string, number>;
  /** The latest watermark committed, if any. */
  watermark?: number;
  /** The latest watermark committed with each source. */
  watermarks: Map<string, number>;
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
  /**
   * The id of the WAL it was taken of (`walId` of its `wal.json`); undefined for a checkpoint
   * written before WAL ids (legacy: used only where its barriers are found in the log).
   */
  walId?: string;
}

/** The manifest: what the checkpoint holds, checksummed; written last, so it proves the rest. */
export const MANIFEST_FILE = "manifest.json";
/** The key/value state as of the checkpoint's epoch. */
export const STATE_FILE = "state.kv";
/** The application's own snapshot bytes. */
export const APP_STATE_FILE = "app.bin";

/**
 * The default checkpoint directory of a WAL directory: `checkpoints` inside it, so that it
 * belongs to that WAL alone (FORMAT.md section 11).
 */
export function defaultCheckpointDir(walDir: string): string {
  return `${walDir}/checkpoints`;
}

/**
 * The default checkpoint directory before WAL ids: `checkpoints` beside the WAL directory,
 * shared by every WAL of the same parent. Read for the migration only, never written.
 */
export function legacyCheckpointDir(walDir: string): string {
  const i = walDir.lastIndexOf("/");
  return i <= 0 ? `${i === 0 ? "" : "."}/checkpoints` : `${walDir.slice(0, i)}/checkpoints`;
}

/**
 * Why checkpoint `m` is not of the WAL `walId` (null: a WAL without an id, of which only legacy
 * checkpoints can be), or undefined when it is, is legacy (it names no WAL), or `walId` is
 * undefined (no WAL to compare with).
 */
export function foreignReason(
  m: CheckpointMetadata,
  walId: string | null | undefined,
): string | undefined {
  if (walId === undefined || m.walId === undefined || m.walId === walId) return undefined;
  return `it was taken of WAL ${m.walId}, not of this WAL (${walId ?? "no id in its wal.json"})`;
}

/** The directory name of checkpoint `id`. */
export function checkpointName(id: number): string {
  return `ckpt-${String(id).padStart(10, "0")}`;
}

/**
 * Whether `name` is the temporary directory name of a checkpoint, exactly as
 * {@linkcode checkpointName} spells it with `.tmp` after: the only entries an interrupted
 * checkpoint leaves, and the only ones the module may clear.
 */
export function isCheckpointLeftoverName(name: string): boolean {
  const m = /^ckpt-(\d{10,})\.tmp$/.exec(name);
  return m !== null && `${checkpointName(Number(m[1]))}.tmp` === name;
}

/** The names in a checkpoint directory; none when it does not exist yet. */
export function checkpointDirEntries(dir: string): string[] {
  try {
    return readDirectory(dir).map((e) => e.name);
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
}

/** The id after every checkpoint directory present, valid or not. */
export function nextCheckpointId(dir: string): number {
  let max = 0;
  for (const n of checkpointDirEntries(dir)) {
    const m = /^ckpt-(\d+)(\.tmp)?$/.exec(n);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

/** The largest manifest read: far above any real one (a few bytes per committed source). */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/** Why a checkpoint directory is not usable, or its metadata. */
export function readCheckpoint(path: string): CheckpointMetadata | { invalid: string } {
  // The module writes real directories: a link in a checkpoint's place is not followed.
  if (lstatIfExists(path)?.isSymlink) return { invalid: "is a symbolic link, not a directory" };
  let bytes: Uint8Array;
  try {
    bytes = readRegularFile(`${path}/${MANIFEST_FILE}`, "Checkpoint manifest", MAX_MANIFEST_BYTES);
  } catch (e) {
    if (!(e instanceof PerCoreWalError)) throw e;
    return { invalid: isMissing(e) ? "no manifest" : `manifest unreadable: ${e.message}` };
  }
  const meta = _decodeManifest(bytes, path);
  if ("invalid" in meta) return meta;
  for (const f of meta.files) {
    // lstat: the file itself, never what a link names (the manifest's names are plain names).
    const info = lstatIfExists(`${path}/${f.name}`);
    if (info === undefined) return { invalid: `${f.name} is missing` };
    if (!info.isFile) return { invalid: `${f.name} is not a regular file` };
    if (info.size !== f.size) {
      return { invalid: `${f.name} has ${info.size} bytes, the manifest says ${f.size}` };
    }
  }
  return meta;
}

/**
 * Checks the files of a checkpoint against the sizes and CRC32Cs in its manifest (reads them
 * whole, never more than the size the manifest states).
 */
export function verifyCheckpointFiles(meta: CheckpointMetadata): string | undefined {
  for (const f of meta.files) {
    const path = `${meta.path}/${f.name}`;
    let crc: number | string;
    try {
      crc = _fileCrc32c(path, f.size);
    } catch (e) {
      if (!(e instanceof PerCoreWalError)) throw e;
      return e.message;
    }
    if (typeof crc === "string") return `${f.name} ${crc}`;
    if (crc !== f.crc32c) return `${f.name} fails its checksum`;
  }
  return undefined;
}

/**
 * The application's snapshot (`app.bin`) of a checkpoint, read as a regular file of exactly the
 * size its manifest states. Throws "Corrupted" if it is not (changed since it was verified).
 */
export function readAppState(meta: CheckpointMetadata): Uint8Array<ArrayBuffer> {
  const path = `${meta.path}/${APP_STATE_FILE}`;
  const size = meta.files.find((f) => f.name === APP_STATE_FILE)?.size ?? 0;
  const bytes = readRegularFile(path, "Checkpoint snapshot", size);
  if (bytes.length !== size) {
    throw new PerCoreWalError(
      "Corrupted",
      `Checkpoint snapshot "${path}" has ${bytes.length} bytes, its manifest says ${size}`,
      { segment: path },
    );
  }
  return bytes;
}

/**
 * The CRC32C of a file of `size` bytes, read in 1 MiB pieces and never past `size`; why not when
 * it holds fewer or more bytes.
 */
function _fileCrc32c(path: string, size: number): number | string {
  let crc = 0xffffffff;
  using file = openRegularFile(path, "Checkpoint file");
  const buf = new Uint8Array(Math.min(1 << 20, size + 1));
  let done = 0;
  while (done < size) {
    const n = readSome(file, buf.subarray(0, Math.min(buf.length, size - done)), path);
    if (n === null) return `ends at ${done} bytes, the manifest says ${size}`;
    crc = crc32cUpdate(crc, buf, 0, n);
    done += n;
  }
  if (readSome(file, buf.subarray(0, 1), path) !== null) {
    return `holds more than the ${size} bytes the manifest says`;
  }
  return ~crc >>> 0;
}

/** Every checkpoint of `dir` whose manifest and file sizes are valid, oldest first. */
export function listValidCheckpoints(dir: string): CheckpointMetadata[] {
  const out: CheckpointMetadata[] = [];
  for (const n of checkpointDirEntries(dir).sort()) {
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

/**
 * The bytes of a manifest: JSON (sequences, epochs, offsets and watermarks as decimal strings,
 * the manifest's format since version 1), a newline, and the CRC32C of the
 * JSON in hex.
 */
export function encodeManifest(m: CheckpointMetadata): Uint8Array {
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
      walId: m.walId ?? null,
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
  let j: unknown;
  try {
    j = JSON.parse(m[1]);
  } catch (e) {
    // What JSON.parse throws; anything else is a bug.
    if (!(e instanceof SyntaxError)) throw e;
    return { invalid: `manifest does not parse: ${e}` };
  }
  try {
    return _manifestFields(j, path);
  } catch (e) {
    if (!(e instanceof _BadManifest)) throw e;
    return { invalid: `manifest is invalid: ${e.message}` };
  }
}

/** A manifest field of the wrong type or out of range (a checksum does not prove the writer). */
class _BadManifest extends Error {}

/**
 * The manifest's fields, each checked for its type and range, since a valid checksum proves only
 * that the bytes are what some writer meant: its file names are the module's own plain names
 * (never a path), its sizes and positions non-negative safe integers, its numbers u64.
 */
function _manifestFields(j: unknown, path: string): CheckpointMetadata {
  const o = _object(j, "the manifest");
  if (o.version !== 1) throw new _BadManifest(`version ${JSON.stringify(o.version)}, not 1`);
  const walPositions = _array(o.walPositions, "walPositions").map((p, c) => {
    const q = _object(p, `walPositions[${c}]`);
    const coreId = _count(q.coreId, `walPositions[${c}].coreId`);
    if (coreId !== c) throw new _BadManifest(`walPositions[${c}] is of core ${coreId}`);
    return {
      coreId,
      segment: _count(q.segment, `walPositions[${c}].segment`),
      offset: _count(q.offset, `walPositions[${c}].offset`),
      sequence: _u64(q.sequence, `walPositions[${c}].sequence`),
    };
  });
  const createdAt = new Date(_string(o.createdAt, "createdAt"));
  if (Number.isNaN(createdAt.getTime())) throw new _BadManifest("createdAt is not a date");
  const hasAppState = o.hasAppState;
  if (typeof hasAppState !== "boolean") throw new _BadManifest("hasAppState is not a boolean");
  const id = _count(o.id, "id");
  if (id < 1) throw new _BadManifest(`id ${id}`);
  return withMapsAsJson({
    id,
    epoch: _u64(o.epoch, "epoch"),
    walPositions,
    entriesMerged: _count(o.entriesMerged, "entriesMerged"),
    stateEntries: _count(o.stateEntries, "stateEntries"),
    offsets: _u64Map(o.offsets, "offsets"),
    watermark: o.watermark === null ? undefined : _i64(o.watermark, "watermark"),
    watermarks: _u64Map(o.watermarks, "watermarks", _i64),
    path,
    createdAt,
    previousId: o.previousId === null || o.previousId === undefined
      ? undefined
      : _count(o.previousId, "previousId"),
    hasAppState,
    files: _files(o.files, hasAppState),
    walId: _walId(o.walId),
  });
}

/**
 * The manifest's files: `state.kv`, and `app.bin` exactly when it says it has the application's
 * state; each once, with a size and a CRC32C.
 */
function _files(v: unknown, hasAppState: boolean): CheckpointMetadata["files"] {
  const files = _array(v, "files").map((f, i) => {
    const o = _object(f, `files[${i}]`);
    const name = _string(o.name, `files[${i}].name`);
    if (name !== STATE_FILE && name !== APP_STATE_FILE) {
      throw new _BadManifest(
        `files[${i}] names ${JSON.stringify(name)}, not ${STATE_FILE} or ${APP_STATE_FILE}`,
      );
    }
    const crc = _count(o.crc32c, `files[${i}].crc32c`);
    if (crc > 0xffffffff) throw new _BadManifest(`files[${i}].crc32c is not 32 bits`);
    return { name, size: _count(o.size, `files[${i}].size`), crc32c: crc };
  });
  const names = files.map((f) => f.name);
  const want = hasAppState ? [STATE_FILE, APP_STATE_FILE] : [STATE_FILE];
  if (names.length !== want.length || !want.every((n) => names.includes(n))) {
    throw new _BadManifest(`files are ${JSON.stringify(names)}, not ${JSON.stringify(want)}`);
  }
  return files;
}

/** The manifest's WAL id: absent or null in a legacy manifest, else 32 hex digits. */
function _walId(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || !/^[0-9a-f]{32}$/.test(v)) {
    throw new _BadManifest("walId is not 32 hexadecimal digits");
  }
  return v;
}

function _object(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new _BadManifest(`${what} is not an object`);
  }
  return v as Record<string, unknown>;
}

function _array(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new _BadManifest(`${what} is not an array`);
  return v;
}

function _string(v: unknown, what: string): string {
  if (typeof v !== "string") throw new _BadManifest(`${what} is not a string`);
  return v;
}

/** A non-negative safe integer. */
function _count(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new _BadManifest(`${what} is not a non-negative integer`);
  }
  return v;
}

/**
 * A u64 written as a decimal string, at most 2^53 - 1 (the one rule for numbers, types.ts: a
 * larger one is refused, never rounded).
 */
function _u64(v: unknown, what: string): number {
  if (typeof v !== "string" || !/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new _BadManifest(`${what} is not a decimal string of a safe integer`);
  }
  return Number(v);
}

/** An i64 written as a decimal string (a watermark), a safe integer. */
function _i64(v: unknown, what: string): number {
  if (typeof v !== "string" || !/^-?\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new _BadManifest(`${what} is not a decimal string of a safe integer`);
  }
  return Number(v);
}

function _u64Map(v: unknown, what: string, item = _u64): Map<string, number> {
  return new Map(
    Object.entries(_object(v, what)).map(([k, x]) => [k, item(x, `${what}[${JSON.stringify(k)}]`)]),
  );
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
  /**
   * "used", "invalid" (skipped, with the reason), "older" (not needed), or "foreign" (of another
   * WAL, or a legacy one whose barriers are not in this WAL's log: ignored, with the reason).
   */
  status: "used" | "invalid" | "older" | "foreign";
  /** Why it is invalid or foreign. */
  reason?: string;
}

/** Options of {@linkcode chooseCheckpoint}. */
export interface ChooseCheckpointOptions {
  /**
   * The WAL the checkpoint must belong to: a checkpoint of another WAL is reported "foreign"
   * and skipped. Null: a WAL without an id, of which only legacy checkpoints (which name no WAL)
   * can be. Undefined: no WAL to compare with; every checkpoint is a candidate.
   */
  walId?: string | null;
  /** Checkpoints (by path) to skip as "foreign", with the reason. */
  exclude?: ReadonlyMap<string, string>;
}

/**
 * The newest checkpoint of `dir` of the WAL `options.walId` (or legacy) whose manifest, file
 * sizes, file CRCs and state file structure are valid, and what was found of the others (newest
 * first). A checkpoint of another WAL is never chosen: it is reported "foreign".
 */
export function chooseCheckpoint(
  dir: string | undefined,
  options: ChooseCheckpointOptions = {},
): { checkpoint?: CheckpointMetadata; checkpointReport: CheckpointReport[] } {
  const checkpointReport: CheckpointReport[] = [];
  if (dir === undefined) return { checkpointReport };
  let names: string[];
  try {
    names = readDirectory(dir).map((e) => e.name).filter((n) => /^ckpt-\d+$/.test(n)).sort()
      .reverse();
  } catch (e) {
    if (isMissing(e)) return { checkpointReport };
    throw e;
  }
  let checkpoint: CheckpointMetadata | undefined;
  for (const n of names) {
    const path = `${dir}/${n}`;
    const excluded = options.exclude?.get(path);
    if (excluded !== undefined) {
      checkpointReport.push({ path, status: "foreign", reason: excluded });
      continue;
    }
    const m = readCheckpoint(path);
    const foreign = "invalid" in m ? undefined : foreignReason(m, options.walId);
    if (foreign !== undefined) {
      checkpointReport.push({ path, status: "foreign", reason: foreign });
      continue;
    }
    if (checkpoint !== undefined) {
      checkpointReport.push({ path, status: "older" });
      continue;
    }
    let why = "invalid" in m ? m.invalid : verifyCheckpointFiles(m);
    if (why === undefined && !("invalid" in m)) {
      try {
        StateFile.open(`${path}/${STATE_FILE}`).close();
      } catch (e) {
        // A damaged or unreadable state file makes the checkpoint invalid; anything else is a bug.
        if (!(e instanceof PerCoreWalError)) throw e;
        why = e.message;
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
