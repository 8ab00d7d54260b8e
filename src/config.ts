/**
 * `PerCoreWalConfig`: where the segments live and how they are written.
 *
 * @module
 */

import { PerCoreWalError } from "./errors.ts";
import { safeIntegerAny } from "./numbers.ts";
import { DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_BYTES_LIMIT, SEGMENT_DATA_OFFSET } from "./format.ts";
import { checkOptionKeys } from "./option_keys.ts";
import { toPath } from "./path_arg.ts";

/**
 * Which I/O backend writes the segments.
 *
 * @example
 * ```ts
 * import { type BackendChoice, PerCoreWalConfig } from "@percore/wal";
 *
 * const backend: BackendChoice = Deno.env.get("WAL_BACKEND") === "sync" ? "sync" : "auto";
 * const config = new PerCoreWalConfig("./data/wal", 2, { backend });
 * ```
 */
export type BackendChoice = "auto" | "io_uring" | "sync";

/**
 * How segment files are opened and made durable.
 *
 * - `"direct"`: `O_DIRECT` writes, each batch linked to an `fdatasync`. Batches are padded to
 *   4 KiB. Fastest on the measured disk (`bench/results/fio_matrix.md`).
 * - `"dsync"`: `O_DIRECT | O_DSYNC` writes: durable when the write completes, no fdatasync.
 * - `"buffered"`: page-cache writes, each batch linked to an `fdatasync`.
 * - `"auto"`: `"direct"` where the file system accepts `O_DIRECT` and the backend is io_uring,
 *   `"buffered"` otherwise.
 *
 * @example
 * ```ts
 * import { PerCoreWalConfig, type WriteMode } from "@percore/wal";
 *
 * const writeMode: WriteMode = "dsync"; // O_DIRECT | O_DSYNC: no separate fdatasync
 * const config = new PerCoreWalConfig("./data/wal", 2, { writeMode });
 * ```
 */
export type WriteMode = "auto" | "direct" | "dsync" | "buffered";

/**
 * How the parts of a segment file are laid out before the log writes into them. A segment gets
 * its full size at once as a sparse file; a first window (1/64 of it, 16 KiB to 1 MiB) is laid
 * out before use, and more ahead of the writer as it advances (docs/PERFORMANCE.md, "segment life
 * cycle"), so a segment holds disk blocks only for what is used and a step ahead.
 *
 * - `"zeros"`: fallocated, then every byte written with zeros and made durable, in the
 *   background. An `fdatasync` then has no metadata to commit (the blocks are written extents),
 *   which roughly halves its latency for small batches, but every byte reaches the disk twice.
 * - `"allocate"`: fallocated only (unwritten extents). Each `fdatasync` also commits the
 *   conversion of the extents just written (a journal commit): cheaper than writing the segment
 *   twice when batches are large and the disk's bandwidth is the limit. Where there is no
 *   `fallocate` (the sync backend, some file systems) segments are zero-filled all the same, so
 *   that a full disk shows when a window is laid out, not at a data write.
 * - `"auto"`: `"allocate"` while this core's recent batches average at least 256 KiB,
 *   `"zeros"` otherwise (and for the first segments, before any batch was written).
 *
 * Either way the file has its full size and reads as zeros past the data, so readers and
 * recovery see the same thing.
 *
 * @example
 * ```ts
 * import { PerCoreWalConfig, type SegmentFill } from "@percore/wal";
 *
 * // A bulk loader that always writes 1 MiB batches: skip the zero-fill.
 * const segmentFill: SegmentFill = "allocate";
 * const config = new PerCoreWalConfig("./data/wal", 2, { segmentFill });
 * ```
 */
export type SegmentFill = "auto" | "zeros" | "allocate";

/**
 * Options of {@linkcode PerCoreWalConfig}; every one has a default.
 *
 * @example
 * ```ts
 * import { PerCoreWalConfig, type PerCoreWalOptions } from "@percore/wal";
 *
 * const options: PerCoreWalOptions = {
 *   segmentSizeBytes: 16 * 1024 * 1024,
 *   maxInFlightBatches: 8,
 *   maxRecordBytes: 1024 * 1024,
 * };
 * const config = new PerCoreWalConfig("./data/wal", 4, options);
 * ```
 */
export interface PerCoreWalOptions {
  /**
   * File name of a segment, with `{core_id}` and `{segment}` (a zero-padded index) in it.
   * No path separator and no `..`. Default `"wal-{core_id}-{segment}.log"`.
   */
  segmentPattern?: string;
  /**
   * Size of each segment file (sparse: laid out a window at a time ahead of the writer); a
   * multiple of 4096. Default 64 MiB.
   */
  segmentSizeBytes?: number;
  /** How a new segment is laid out before use ({@linkcode SegmentFill}). Default `"auto"`. */
  segmentFill?: SegmentFill;
  /** The I/O backend. Default `"auto"`: io_uring where it works, the sync backend otherwise. */
  backend?: BackendChoice;
  /** How files are written. Default `"auto"`. */
  writeMode?: WriteMode;
  /** Submission queue entries of each core's ring (a power of two, 8 to 4096). Default 256. */
  ringEntries?: number;
  /** A batch is sealed and submitted once it holds this many bytes. Default 1 MiB. */
  maxBatchBytes?: number;
  /** How many batches may be between submission and durability at once. Default 8. */
  maxInFlightBatches?: number;
  /** After a `sync()` request, wait this long for more appends before flushing. Default 0. */
  syncDelayMs?: number;
  /** Largest record (header, key and value), enforced by writer and reader. Default 16 MiB. */
  maxRecordBytes?: number;
  /** Appended bytes not yet durable above which appends throw "Backpressure". Default 64 MiB. */
  maxPendingBytes?: number;
  /**
   * Permission bits of the files the WAL creates: segments, `wal.json`, `wal.lock` and checkpoint
   * files. Directories it creates get the same bits plus search (`x`) wherever read is set
   * (`0o600` → `0o700`). The process umask still applies. Default `0o600`.
   */
  fileMode?: number;
  /**
   * Follow `baseDir` (and a checkpoint directory) when it is a symbolic link. Default false: a
   * symlinked directory is refused with "Unsafe". Parent directories are not checked; segment
   * files that are symbolic links are always refused.
   */
  allowSymlinks?: boolean;
  /**
   * Shared memory per core and producer thread through which records reach the core's Worker
   * (a power of two, at least 2 × (`maxRecordBytes` + 8)). Default: 8 MiB, or that
   * minimum if it is more (64 MiB with the defaults). While the Worker keeps up, a producer
   * cycles through the first 1 MiB of it (which stays in the CPU caches, and is all of it that
   * becomes resident); the rest takes bursts.
   */
  sharedBufferBytes?: number;
  /** Pin core i's Worker to CPU `i % nproc` (`sched_setaffinity`). Default false. */
  pinWorkers?: boolean;
}

/**
 * All options, resolved.
 *
 * @example
 * ```ts
 * import { PerCoreWalConfig, type ResolvedWalOptions } from "@percore/wal";
 *
 * const config = new PerCoreWalConfig("./data/wal", 2);
 * const resolved: ResolvedWalOptions = config.options;
 * console.log(resolved.segmentSizeBytes, resolved.maxBatchBytes);
 * ```
 */
export type ResolvedWalOptions = Required<PerCoreWalOptions>;

/** The segment file name pattern when none is given. */
export const DEFAULT_SEGMENT_PATTERN = "wal-{core_id}-{segment}.log";
const MiB = 1024 * 1024;

/**
 * Configuration of a per-core WAL: the directory, the number of cores, and how segments are
 * written.
 *
 * @example
 * ```ts
 * import { PerCoreWalConfig } from "@percore/wal";
 *
 * const config = new PerCoreWalConfig("/data/wal", 4, { segmentSizeBytes: 16 * 1024 * 1024 });
 * console.log(config.segmentPath(2, 17)); // "/data/wal/wal-2-000017.log"
 * ```
 */
export class PerCoreWalConfig {
  /** The directory that holds every core's segments. */
  readonly baseDir: string;
  /** How many cores (1 to 1024). */
  readonly numCores: number;
  /** The options, with defaults filled in. */
  readonly options: Readonly<ResolvedWalOptions>;
  #pattern: RegExp;

  /**
   * Validates and stores a configuration. `baseDir` is a path or a `file:` URL. Throws
   * `TypeError` or `RangeError` for a bad value, and `TypeError` for an unknown option key.
   */
  constructor(baseDir: string | URL, numCores: number, options: PerCoreWalOptions = {}) {
    baseDir = toPath(baseDir, "baseDir");
    checkBaseDir(baseDir);
    safeIntegerAny(numCores, "numCores");
    if (numCores < 1 || numCores > 1024) {
      throw new RangeError(`numCores must be between 1 and 1024, got ${numCores}`);
    }
    this.baseDir = baseDir.length > 1 ? baseDir.replace(/\/+$/, "") : baseDir;
    this.numCores = numCores;
    this.options = Object.freeze(resolveOptions(options));
    this.#pattern = _patternRegExp(this.options.segmentPattern);
  }

  /** The path of segment `segment` of core `coreId`. */
  segmentPath(coreId: number, segment: number): string {
    return `${this.baseDir}/${formatSegmentName(this.options.segmentPattern, coreId, segment)}`;
  }

  /**
   * Parses a file name made by {@linkcode segmentPath}: its core and segment, or undefined. Any
   * core id is parsed, also one at or beyond {@linkcode numCores}.
   */
  parseSegmentName(name: string): { coreId: number; segment: number } | undefined {
    return _parseWith(this.#pattern, name);
  }
}

/** Throws `TypeError` unless `baseDir` can name a WAL directory (a non-empty string). */
export function checkBaseDir(baseDir: unknown): void {
  if (typeof baseDir !== "string" || baseDir.length === 0) {
    throw new TypeError("baseDir must be a non-empty string");
  }
}

/** Segment patterns compiled by {@linkcode parseSegmentFileName}. */
const _compiledPatterns = new Map<string, RegExp>();

/**
 * Parses a segment file name made with `segmentPattern`: its core and segment, or undefined. For
 * reading a directory whose configuration is not known yet. Throws `TypeError` or `RangeError`
 * for a pattern that {@linkcode PerCoreWalConfig} would refuse.
 */
export function parseSegmentFileName(
  segmentPattern: string,
  name: string,
): { coreId: number; segment: number } | undefined {
  let pattern = _compiledPatterns.get(segmentPattern);
  if (pattern === undefined) {
    pattern = _patternRegExp(_segmentPattern(segmentPattern));
    _compiledPatterns.set(segmentPattern, pattern);
  }
  return _parseWith(pattern, name);
}

function _parseWith(
  pattern: RegExp,
  name: string,
): { coreId: number; segment: number } | undefined {
  const m = pattern.exec(name);
  if (m === null) return undefined;
  const coreId = Number(m.groups!.core);
  const segment = Number(m.groups!.segment);
  if (!Number.isSafeInteger(coreId) || !Number.isSafeInteger(segment)) return undefined;
  return { coreId, segment };
}

/** Formats a segment file name from the pattern. */
export function formatSegmentName(pattern: string, coreId: number, segment: number): string {
  return pattern.replace("{core_id}", String(coreId)).replace(
    "{segment}",
    String(segment).padStart(6, "0"),
  );
}

function _patternRegExp(pattern: string): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
  const [a, rest] = _splitOnce(pattern, "{core_id}");
  const src = rest.includes("{segment}")
    ? (() => {
      const [b, c] = _splitOnce(rest, "{segment}");
      return `${esc(a)}(?<core>\\d+)${esc(b)}(?<segment>\\d+)${esc(c)}`;
    })()
    : (() => {
      const [b, c] = _splitOnce(a, "{segment}");
      return `${esc(b)}(?<segment>\\d+)${esc(c)}(?<core>\\d+)${esc(rest)}`;
    })();
  return new RegExp(`^${src}$`);
}

function _splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return [s.slice(0, i), s.slice(i + sep.length)];
}

function _int(name: string, v: unknown, min: number, max: number): number {
  const n = safeIntegerAny(v, name);
  if (n < min || n > max) {
    throw new RangeError(`${name} must be between ${min} and ${max}, got ${n}`);
  }
  return n;
}

function _oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) {
    throw new RangeError(`${name} must be one of ${allowed.join(", ")}, got ${String(v)}`);
  }
  return v as T;
}

/** Fills in defaults and validates every option. */
export function resolveOptions(options: PerCoreWalOptions): ResolvedWalOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError("options must be an object");
  }
  checkOptionKeys(options, "PerCoreWalOptions");
  const segmentPattern = _segmentPattern(options.segmentPattern ?? DEFAULT_SEGMENT_PATTERN);
  const { segmentSizeBytes, maxRecordBytes } = _segmentAndRecordSizes(options);
  const ringEntries = _int("ringEntries", options.ringEntries ?? 256, 8, 4096);
  if ((ringEntries & (ringEntries - 1)) !== 0) {
    throw new RangeError(`ringEntries must be a power of two, got ${ringEntries}`);
  }
  const syncDelayMs = options.syncDelayMs ?? 0;
  if (typeof syncDelayMs !== "number" || !(syncDelayMs >= 0 && syncDelayMs <= 10_000)) {
    throw new RangeError(`syncDelayMs must be between 0 and 10000, got ${String(syncDelayMs)}`);
  }
  const sharedBufferBytes = _sharedBufferBytes(options.sharedBufferBytes, maxRecordBytes);
  if (options.pinWorkers !== undefined && typeof options.pinWorkers !== "boolean") {
    throw new TypeError("pinWorkers must be a boolean");
  }
  if (options.allowSymlinks !== undefined && typeof options.allowSymlinks !== "boolean") {
    throw new TypeError("allowSymlinks must be a boolean");
  }
  return {
    segmentPattern,
    segmentSizeBytes,
    backend: _oneOf("backend", options.backend ?? "auto", ["auto", "io_uring", "sync"] as const),
    writeMode: _oneOf(
      "writeMode",
      options.writeMode ?? "auto",
      ["auto", "direct", "dsync", "buffered"] as const,
    ),
    segmentFill: _oneOf(
      "segmentFill",
      options.segmentFill ?? "auto",
      ["auto", "zeros", "allocate"] as const,
    ),
    ringEntries,
    maxBatchBytes: _int("maxBatchBytes", options.maxBatchBytes ?? MiB, 4096, 256 * MiB),
    maxInFlightBatches: _int(
      "maxInFlightBatches",
      options.maxInFlightBatches ?? 8,
      1,
      ringEntries / 4,
    ),
    syncDelayMs,
    maxRecordBytes,
    maxPendingBytes: _int("maxPendingBytes", options.maxPendingBytes ?? 64 * MiB, MiB, 2 ** 40),
    fileMode: _int("fileMode", options.fileMode ?? 0o600, 0, 0o777),
    sharedBufferBytes,
    pinWorkers: options.pinWorkers ?? false,
    allowSymlinks: options.allowSymlinks ?? false,
  };
}

/** A segment pattern that names one file per core and index, and no path. */
function _segmentPattern(segmentPattern: unknown): string {
  if (typeof segmentPattern !== "string") throw new TypeError("segmentPattern must be a string");
  if (/[/\\\0]/.test(segmentPattern) || segmentPattern.includes("..")) {
    throw new RangeError(
      `segmentPattern "${segmentPattern}" must be a plain file name (no path separator, no "..")`,
    );
  }
  for (const field of ["{core_id}", "{segment}"]) {
    if (segmentPattern.split(field).length !== 2) {
      throw new RangeError(`segmentPattern "${segmentPattern}" must contain ${field} exactly once`);
    }
  }
  if (
    segmentPattern.includes("{core_id}{segment}") || segmentPattern.includes("{segment}{core_id}")
  ) {
    throw new RangeError(`segmentPattern "${segmentPattern}" needs a separator between its fields`);
  }
  return segmentPattern;
}

/** The segment size, and the largest record, which must fit a segment. */
function _segmentAndRecordSizes(
  options: PerCoreWalOptions,
): { segmentSizeBytes: number; maxRecordBytes: number } {
  const segmentSizeBytes = _int(
    "segmentSizeBytes",
    options.segmentSizeBytes ?? 64 * MiB,
    4 * 4096,
    2 ** 40,
  );
  if (segmentSizeBytes % 4096 !== 0) {
    throw new RangeError(`segmentSizeBytes must be a multiple of 4096, got ${segmentSizeBytes}`);
  }
  // A record must fit a segment with room for alignment padding.
  const roomBytes = segmentSizeBytes - SEGMENT_DATA_OFFSET - 4096;
  const maxRecordBytes = options.maxRecordBytes === undefined
    ? Math.min(DEFAULT_MAX_RECORD_BYTES, roomBytes)
    : _int("maxRecordBytes", options.maxRecordBytes, 64, Number.MAX_SAFE_INTEGER);
  if (maxRecordBytes > MAX_CONFIG_RECORD_BYTES) {
    throw new RangeError(
      `maxRecordBytes must be at most ${MAX_CONFIG_RECORD_BYTES} (a core's shared buffer, at ` +
        `most ${SHARED_BUFFER_MAX_BYTES} bytes, holds two records), got ${maxRecordBytes}`,
    );
  }
  if (maxRecordBytes > roomBytes) {
    throw new RangeError(
      `maxRecordBytes ${maxRecordBytes} does not fit a segment of ${segmentSizeBytes} bytes ` +
        `(at most ${roomBytes}): raise segmentSizeBytes or lower maxRecordBytes`,
    );
  }
  return { segmentSizeBytes, maxRecordBytes };
}

/** The largest shared buffer of a core and producer thread. */
const SHARED_BUFFER_MAX_BYTES = 2 ** 30;
/** The largest record a configuration accepts: two of them (and their lengths) fill that buffer. */
const MAX_CONFIG_RECORD_BYTES = Math.min(MAX_RECORD_BYTES_LIMIT, SHARED_BUFFER_MAX_BYTES / 2 - 8);

/** The shared buffer: a power of two that holds at least two of the largest records. */
function _sharedBufferBytes(asked: number | undefined, maxRecordBytes: number): number {
  const minShared = 2 ** Math.ceil(Math.log2(2 * (maxRecordBytes + 8)));
  const sharedBufferBytes = asked === undefined
    ? Math.max(8 * MiB, minShared)
    : _int("sharedBufferBytes", asked, 4096, SHARED_BUFFER_MAX_BYTES);
  if ((sharedBufferBytes & (sharedBufferBytes - 1)) !== 0 || sharedBufferBytes < minShared) {
    throw new RangeError(
      `sharedBufferBytes must be a power of two of at least ${minShared} (twice maxRecordBytes), ` +
        `got ${sharedBufferBytes}`,
    );
  }
  return sharedBufferBytes;
}

/**
 * The error for a value of `wal.json` (at `path`) that {@linkcode PerCoreWalConfig} refuses: a
 * "Corrupted" `PerCoreWalError` naming the file and the field (the first word of the
 * configuration's message), with the refusal as its cause. Other errors are returned unchanged.
 */
export function walJsonError(path: string, e: unknown): unknown {
  if (!(e instanceof RangeError || e instanceof TypeError)) return e;
  const field = /^(\w+)/.exec(e.message)?.[1] ?? "?";
  return new PerCoreWalError(
    "Corrupted",
    `"${path}" is not a usable WAL metadata file: field "${field}": ${e.message}`,
    { segment: path, cause: e },
  );
}

/** The mode of a directory the WAL creates: `fileMode` plus search wherever read is set. */
export function directoryMode(fileMode: number): number {
  return fileMode | ((fileMode & 0o444) >> 2);
}
