/**
 * `wal.json`: what a WAL directory holds (format version, cores, segment pattern), so that
 * tools and recovery can read a directory without its configuration.
 *
 * @module
 */

import {
  checkBaseDir,
  DEFAULT_SEGMENT_PATTERN,
  parseSegmentFileName,
  PerCoreWalConfig,
  type PerCoreWalOptions,
  walJsonError,
} from "./config.ts";
import { PerCoreWalError } from "./errors.ts";
import { FORMAT_VERSION } from "./format.ts";
import { toPath } from "./path_arg.ts";
import {
  isMissing,
  readDirectory,
  readRegularFile,
  renamePath,
  syncDirectory,
  writeSyncedFile,
} from "./fs.ts";

/** The name of the metadata file in a WAL directory. */
export const META_FILE = "wal.json";

/**
 * What `wal.json` holds.
 *
 * @example
 * ```ts
 * import type { WalMeta } from "@percore/wal";
 *
 * const meta: WalMeta = JSON.parse(await Deno.readTextFile("./data/wal/wal.json"));
 * console.log(meta.formatVersion, meta.numCores, meta.segmentPattern);
 * ```
 */
export interface WalMeta {
  /** On-disk format version of the segments. */
  formatVersion: number;
  /** How many cores write to the directory. */
  numCores: number;
  /** The segment file name pattern. */
  segmentPattern: string;
  /** The largest record the writer accepts (readers must accept it too). */
  maxRecordBytes?: number;
  /**
   * The WAL's identity: 32 random hex digits made when the WAL was created (or when a manager
   * first opened a WAL written before identities), kept on every rewrite. Every checkpoint's
   * manifest records it, so that a checkpoint of another WAL is never taken for this one's.
   */
  walId?: string;
}

/** What a WAL id looks like: 128 random bits in lowercase hex. */
const WAL_ID = /^[0-9a-f]{32}$/;

/** A new random WAL id. */
export function newWalId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The largest `wal.json` read: a few hundred bytes are written. */
const MAX_META_BYTES = 1024 * 1024;

/** Reads `wal.json`, or undefined if there is none. Throws "Corrupted" if it is unreadable. */
export function readWalMeta(dir: string): WalMeta | undefined {
  let bytes: Uint8Array;
  try {
    // A regular file only (a FIFO would block the open forever), and a small one.
    bytes = readRegularFile(`${dir}/${META_FILE}`, "WAL metadata file", MAX_META_BYTES);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  let m: Partial<Record<keyof WalMeta, unknown>> | null = null;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    // Not JSON: corrupted, as is JSON that is not a metadata object.
    if (!(e instanceof SyntaxError)) throw e;
  }
  if (
    m !== null && typeof m === "object" &&
    typeof m.numCores === "number" && Number.isInteger(m.numCores) &&
    typeof m.segmentPattern === "string" &&
    typeof m.formatVersion === "number" &&
    (m.walId === undefined || (typeof m.walId === "string" && WAL_ID.test(m.walId)))
  ) {
    return {
      formatVersion: m.formatVersion,
      numCores: m.numCores,
      segmentPattern: m.segmentPattern,
      maxRecordBytes: typeof m.maxRecordBytes === "number" ? m.maxRecordBytes : undefined,
      walId: m.walId as string | undefined,
    };
  }
  throw new PerCoreWalError("Corrupted", `"${dir}/${META_FILE}" is not a valid WAL metadata file`, {
    segment: `${dir}/${META_FILE}`,
  });
}

/** Writes `wal.json` atomically (temporary file, fsync, rename, fsync of the directory). */
export function writeWalMeta(dir: string, meta: WalMeta, fileMode = 0o600): void {
  const tmp = `${dir}/${META_FILE}.tmp`;
  writeSyncedFile(tmp, new TextEncoder().encode(JSON.stringify(meta, null, 2) + "\n"), fileMode);
  renamePath(tmp, `${dir}/${META_FILE}`);
  syncDirectory(dir);
}

/**
 * Checks a configuration against the directory's `wal.json` and records it there: refuses
 * fewer cores than the directory has segments for, or another segment pattern. Gives the WAL an
 * id when it has none (a new WAL, or one written before ids: the migration), and keeps the one
 * it has on every rewrite. Returns what `wal.json` holds afterwards.
 */
export function reconcileWalMeta(config: PerCoreWalConfig): WalMeta & { walId: string } {
  const meta = readWalMeta(config.baseDir);
  const want = {
    formatVersion: FORMAT_VERSION,
    numCores: Math.max(config.numCores, meta?.numCores ?? 0),
    segmentPattern: config.options.segmentPattern,
    maxRecordBytes: Math.max(config.options.maxRecordBytes, meta?.maxRecordBytes ?? 0),
    walId: meta?.walId ?? newWalId(),
  };
  // The segment files are the truth, with or without wal.json: a core beyond `numCores` that has
  // segments would be left unread (and its acknowledged records lost to recovery).
  const beyond = _highestCoreWithSegments(config);
  if (beyond !== undefined && beyond >= config.numCores) {
    throw new PerCoreWalError(
      "ConfigMismatch",
      `WAL directory "${config.baseDir}" holds segments of ${beyond + 1} cores; opening it with ` +
        `${config.numCores} would leave cores ${config.numCores}..${beyond} unread`,
    );
  }
  if (meta !== undefined) {
    if (meta.segmentPattern !== config.options.segmentPattern) {
      throw new PerCoreWalError(
        "ConfigMismatch",
        `WAL directory "${config.baseDir}" uses segmentPattern "${meta.segmentPattern}", ` +
          `not "${config.options.segmentPattern}"`,
      );
    }
    if (
      meta.numCores >= config.numCores && meta.formatVersion === FORMAT_VERSION &&
      (meta.maxRecordBytes ?? 0) >= config.options.maxRecordBytes && meta.walId !== undefined
    ) return { ...meta, walId: meta.walId };
  }
  writeWalMeta(config.baseDir, want, config.options.fileMode);
  return want;
}

/** The highest core id of a segment file in the directory (by the configured pattern). */
function _highestCoreWithSegments(config: PerCoreWalConfig): number | undefined {
  let highest: number | undefined;
  for (const e of readDirectory(config.baseDir)) {
    const p = parseSegmentFileName(config.options.segmentPattern, e.name);
    if (p !== undefined && (highest === undefined || p.coreId > highest)) highest = p.coreId;
  }
  return highest;
}

/**
 * The configuration of an existing WAL directory: from its `wal.json`, or, without one, from its
 * file names (default pattern; cores up to the largest core id found).
 *
 * @example
 * ```ts
 * import { configFromDirectory, PerCoreWalManager } from "@percore/wal";
 *
 * // Reopen a WAL with the cores and file names it was created with (its wal.json).
 * const config = configFromDirectory("./data/wal");
 * await using manager = await PerCoreWalManager.open(config);
 * console.log(config.numCores);
 * ```
 */
export function configFromDirectory(
  dir: string | URL,
  options: PerCoreWalOptions = {},
): PerCoreWalConfig {
  dir = toPath(dir, "dir");
  const meta = readWalMeta(dir);
  if (meta !== undefined) {
    // Read with the largest record limit the directory was written with.
    const max = meta.maxRecordBytes ?? options.maxRecordBytes;
    const room = max === undefined ? undefined : Math.ceil((max + 8192) / 4096) * 4096;
    try {
      return new PerCoreWalConfig(dir, meta.numCores, {
        ...options,
        segmentPattern: meta.segmentPattern,
        maxRecordBytes: max,
        segmentSizeBytes: room === undefined
          ? options.segmentSizeBytes
          : Math.max(options.segmentSizeBytes ?? 64 * 1024 * 1024, room),
      });
    } catch (e) {
      // A value of wal.json the configuration refuses: say which file and field.
      throw walJsonError(`${dir}/${META_FILE}`, e);
    }
  }
  const pattern = options.segmentPattern ?? DEFAULT_SEGMENT_PATTERN;
  // Refuses what the configuration made below would refuse, before reading the directory.
  checkBaseDir(dir);
  parseSegmentFileName(pattern, "");
  const cores = _coresOfSegments(dir, pattern);
  if (cores === undefined) {
    throw new PerCoreWalError("SegmentNotFound", `WAL directory "${dir}" does not exist`, {
      segment: dir,
    });
  }
  if (cores === 0) {
    throw new PerCoreWalError(
      "SegmentNotFound",
      `"${dir}" holds no WAL segment and no ${META_FILE}`,
      {
        segment: dir,
      },
    );
  }
  return new PerCoreWalConfig(dir, cores, { ...options, segmentPattern: pattern });
}

/**
 * How many cores the segment files of `dir` (named by `pattern`) show: the largest core id found
 * (below 1024) plus one, 0 without a segment, undefined without the directory.
 */
function _coresOfSegments(dir: string, pattern: string): number | undefined {
  let cores = 0;
  try {
    for (const e of readDirectory(dir)) {
      const p = parseSegmentFileName(pattern, e.name);
      if (p !== undefined && p.coreId < 1024) cores = Math.max(cores, p.coreId + 1);
    }
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  return cores;
}

/**
 * What an existing WAL directory says of itself, read without creating or changing anything: its
 * core count (from `wal.json`, and its segment files, the larger) and its segment pattern (from
 * `wal.json`, else `segmentPattern`). Undefined when the directory does not exist or holds
 * neither `wal.json` nor a segment.
 */
export function existingWalLayout(
  dir: string,
  segmentPattern: string = DEFAULT_SEGMENT_PATTERN,
): { numCores: number; segmentPattern: string } | undefined {
  const meta = readWalMeta(dir);
  const pattern = meta?.segmentPattern ?? segmentPattern;
  const fromFiles = _coresOfSegments(dir, pattern) ?? 0;
  const numCores = Math.max(meta?.numCores ?? 0, fromFiles);
  return numCores === 0 ? undefined : { numCores, segmentPattern: pattern };
}
