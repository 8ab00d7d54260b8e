/**
 * The one error class of the module.
 *
 * @module
 */

/**
 * What went wrong, as a stable string a program can switch on.
 *
 * @example
 * ```ts
 * import { PerCoreWalError, PerCoreWalErrorCode } from "@percore/wal";
 *
 * function retryable(e: unknown): boolean {
 *   return e instanceof PerCoreWalError && e.code === PerCoreWalErrorCode.Backpressure;
 * }
 * ```
 */
export const PerCoreWalErrorCode = {
  /** A system call failed; `errno` and `operation` say which. */
  Io: "Io",
  /** A core id outside `0..numCores-1`. */
  InvalidCoreId: "InvalidCoreId",
  /** A segment file that should exist does not. */
  SegmentNotFound: "SegmentNotFound",
  /** A segment header or record failed its CRC32C. */
  ChecksumMismatch: "ChecksumMismatch",
  /** The last record of a core's log is incomplete (a write cut short by a crash). */
  TornWrite: "TornWrite",
  /** Bytes that are not a valid record where one must be. */
  Corrupted: "Corrupted",
  /** A record larger than `maxRecordBytes`. */
  RecordTooLarge: "RecordTooLarge",
  /** The log or reader was closed. */
  Closed: "Closed",
  /** io_uring or a requested I/O mode cannot be used on this machine. */
  Unsupported: "Unsupported",
  /** A previous I/O failure stopped this core: nothing more is accepted. */
  Failed: "Failed",
  /** Too much appended data is waiting for the disk. */
  Backpressure: "Backpressure",
  /** The directory is held by another writer. */
  Locked: "Locked",
  /** The configuration does not match the WAL directory (cores, segment pattern). */
  ConfigMismatch: "ConfigMismatch",
  /**
   * A path the module will not follow: the WAL directory is a symbolic link (without
   * `allowSymlinks`), or a segment file is one.
   */
  Unsafe: "Unsafe",
  /**
   * An invariant of the engine did not hold (a bug of the module, not of the caller or the
   * disk): the message names it. The core that met it is failed, as after an I/O error.
   */
  Internal: "Internal",
  /**
   * A reader of a live log (`watch`, `watchWal`) asked for entries that a checkpoint retired
   * (deleted their segments): the message names the core and the sequence.
   */
  Retired: "Retired",
} as const;

/** One of the {@linkcode PerCoreWalErrorCode} values. */
export type PerCoreWalErrorCode = typeof PerCoreWalErrorCode[keyof typeof PerCoreWalErrorCode];

/**
 * Structured fields carried by a {@linkcode PerCoreWalError}.
 *
 * @example
 * ```ts
 * import { PerCoreWalError, type PerCoreWalErrorDetails } from "@percore/wal";
 *
 * const details: PerCoreWalErrorDetails = { coreId: 3, segment: "wal-3-000017.log", offset: 8192 };
 * const e = new PerCoreWalError("ChecksumMismatch", "checksum mismatch at offset 8192", details);
 * console.log(e.segment, e.offset);
 * ```
 */
export interface PerCoreWalErrorDetails {
  /** The core whose log is concerned. */
  coreId?: number;
  /** The segment file concerned (a path). */
  segment?: string;
  /** The byte offset in the segment file. */
  offset?: number;
  /** The errno name, such as `"EIO"` or `"ENOSPC"`. */
  errno?: string;
  /** The operation that failed, such as `"fdatasync"`. */
  operation?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * The error every operation of the module throws or rejects with, apart from `TypeError` and
 * `RangeError` for wrong arguments.
 *
 * @example Switch on the code
 * ```ts
 * import { PerCoreWalError } from "@percore/wal";
 *
 * const err = new PerCoreWalError("Closed", "Cannot append: the log is closed", { coreId: 0 });
 * if (err instanceof PerCoreWalError && err.code === "Closed") {
 *   console.log(err.message);
 * }
 * ```
 */
export class PerCoreWalError extends Error {
  /** What went wrong. */
  readonly code: PerCoreWalErrorCode;
  /** The core concerned, if any. */
  readonly coreId?: number;
  /** The segment file concerned, if any. */
  readonly segment?: string;
  /** The byte offset concerned, if any. */
  readonly offset?: number;
  /** The errno name of a failed system call, if any. */
  readonly errno?: string;
  /** The operation that failed, if any. */
  readonly operation?: string;

  /** Creates an error with a code, a message saying what failed and where, and details. */
  constructor(code: PerCoreWalErrorCode, message: string, details: PerCoreWalErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "PerCoreWalError";
    this.code = code;
    this.coreId = details.coreId;
    this.segment = details.segment;
    this.offset = details.offset;
    this.errno = details.errno;
    this.operation = details.operation;
  }
}
