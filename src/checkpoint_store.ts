/**
 * The checkpoints on disk: one directory each (`ckpt-NNNNNNNNNN`), holding the state file, the
 * application's snapshot and a manifest that names them with their sizes and CRC32Cs. How they
 * are named, listed, read, verified and chosen; the coordinator that writes them is in
 * `checkpoint.ts`. Every file-system call goes through `fs.ts`.
 *
 * @module
 */

import { crc32c, crc32cUpdate } from "./crc32c.ts";
import { isMissing, openFile, readDirectory, readSome, readWholeFile, statPath } from "./fs.ts";
import { PerCoreWalError } from "./errors.ts";
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

/** The manifest: what the checkpoint holds, checksummed; written last, so it proves the rest. */
export const MANIFEST_FILE = "manifest.json";
/** The key/value state as of the checkpoint's epoch. */
export const STATE_FILE = "state.kv";
/** The application's own snapshot bytes. */
export const APP_STATE_FILE = "app.bin";

/** The default checkpoint directory of a WAL directory: `checkpoints` beside it. */
export function defaultCheckpointDir(walDir: string): string {
  const i = walDir.lastIndexOf("/");
  return i <= 0 ? `${i === 0 ? "" : "."}/checkpoints` : `${walDir.slice(0, i)}/checkpoints`;
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

/** Why a checkpoint directory is not usable, or its metadata. */
export function readCheckpoint(path: string): CheckpointMetadata | { invalid: string } {
  let bytes: Uint8Array;
  try {
    bytes = readWholeFile(`${path}/${MANIFEST_FILE}`);
  } catch (e) {
    if (!(e instanceof PerCoreWalError)) throw e;
    return { invalid: isMissing(e) ? "no manifest" : `manifest unreadable: ${e}` };
  }
  const meta = _decodeManifest(bytes, path);
  if ("invalid" in meta) return meta;
  for (const f of meta.files) {
    let size: number;
    try {
      size = statPath(`${path}/${f.name}`).size;
    } catch (e) {
      if (isMissing(e)) return { invalid: `${f.name} is missing` };
      throw e;
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
    if (_fileCrc32c(path) !== f.crc32c) return `${f.name} fails its checksum`;
  }
  return undefined;
}

/** The CRC32C of a whole file, read in 1 MiB pieces. */
function _fileCrc32c(path: string): number {
  let crc = 0xffffffff;
  using file = openFile(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = readSome(file, buf, path);
    if (n === null) break;
    crc = crc32cUpdate(crc, buf, 0, n);
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
 * The bytes of a manifest: JSON (bigints as decimal strings), a newline, and the CRC32C of the
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
    // What JSON.parse, BigInt and a missing field throw; anything else is a bug.
    if (!(e instanceof SyntaxError || e instanceof TypeError || e instanceof RangeError)) throw e;
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
    names = readDirectory(dir).map((e) => e.name).filter((n) => /^ckpt-\d+$/.test(n)).sort()
      .reverse();
  } catch (e) {
    if (isMissing(e)) return { checkpointReport };
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
