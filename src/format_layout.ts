/**
 * The byte layout of the on-disk format (version 3; versions 1 and 2 are still read): sizes, record
 * types, the offsets of a record's header fields, the little-endian integer codecs, the salted
 * record CRC, and the record headers and batch markers the writer lays out. Pure: no I/O.
 * `docs/FORMAT.md` describes every byte.
 *
 * @module
 */

import { crc32cUpdate } from "./crc32c.ts";

/**
 * The format version this module writes (it reads versions 1 to 3).
 *
 * @example
 * ```ts
 * import { FORMAT_VERSION } from "@percore/wal";
 *
 * console.log(`this build writes segment format v${FORMAT_VERSION}`);
 * ```
 */
export const FORMAT_VERSION = 3;
/** The oldest format version this module reads. */
export const MIN_FORMAT_VERSION = 1;
/** `"PCWALSEG"`: the first 8 bytes of every segment file. */
export const SEGMENT_MAGIC: Uint8Array = new TextEncoder().encode("PCWALSEG");
/** Bytes of the segment header that carry fields (the rest of the header block is zero). */
export const SEGMENT_HEADER_BYTES = 64;
/** Offset of the first record: the header has a 4 KiB block of its own (O_DIRECT alignment). */
export const SEGMENT_DATA_OFFSET = 4096;
/** Bytes of the header every record starts with. */
export const RECORD_HEADER_BYTES = 38;
/**
 * Bytes a `put` adds to its key and value: the record header and the 2-byte key length.
 *
 * @example
 * ```ts
 * import { PUT_OVERHEAD_BYTES } from "@percore/wal";
 *
 * // Bytes a put of a 16-byte key and a 112-byte value takes in a segment (before padding).
 * console.log(PUT_OVERHEAD_BYTES + 16 + 112);
 * ```
 */
export const PUT_OVERHEAD_BYTES = 40;
/**
 * Largest key of a `put` or `delete`.
 *
 * @example
 * ```ts
 * import { MAX_KEY_BYTES } from "@percore/wal";
 *
 * const key = new TextEncoder().encode("user:42");
 * if (key.length > MAX_KEY_BYTES) throw new RangeError("key too long");
 * ```
 */
export const MAX_KEY_BYTES = 0xffff;
/** Default `maxRecordBytes` (a record without its padding). */
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** Upper bound for a configured `maxRecordBytes` (the length field is a u32). */
export const MAX_RECORD_BYTES_LIMIT = 1024 * 1024 * 1024;

/** Record type codes. 0 is never valid, so zeros never decode. */
export const RecordType = {
  put: 1,
  delete: 2,
  checkpoint: 3,
  commit: 4,
  epochBarrier: 5,
  /**
   * Version 2: the first record of every batch. It takes no sequence of its own (its sequence
   * field is that of the next record) and its body is the u64 sequence through which the core
   * had acknowledged records when the batch was submitted. Readers skip it.
   */
  batch: 6,
  /**
   * Version 3: an atomic batch, several operations in one record (`appendBatch`). Its sequence
   * field is the first of the `count` consecutive sequences it takes; readers expand it into
   * `count` entries (`src/batch_record.ts`).
   */
  atomicBatch: 7,
} as const;

/** Bytes of a batch marker (version 2): a record header and a u64 body. */
export const BATCH_MARKER_BYTES = RECORD_HEADER_BYTES + 8;

// Field offsets within a record (docs/FORMAT.md, "Records").
export const R_CRC = 0;
export const R_LENGTH = 4;
export const R_EPOCH = 8;
export const R_SEQUENCE = 16;
export const R_TIMESTAMP = 24;
export const R_TYPE = 32;
export const R_FLAGS = 33;
export const R_CORE = 34;
export const R_PAD = 36;

const TWO32 = 4294967296;
/** Largest epoch (and sequence): they are kept as JavaScript numbers. */
export const MAX_EPOCH = Number.MAX_SAFE_INTEGER;

/** Writes a non-negative safe integer as a little-endian u64. */
export function setU64(view: DataView, pos: number, n: number): void {
  const lo = n % TWO32;
  view.setUint32(pos, lo, true);
  view.setUint32(pos + 4, (n - lo) / TWO32, true);
}

/** Writes `us * 1000` (nanoseconds from microseconds, exact for any safe `us`) as an i64. */
export function setNsFromUs(view: DataView, pos: number, us: number): void {
  const uh = Math.floor(us / TWO32);
  const ul = us - uh * TWO32;
  const l = ul * 1000;
  const lo = l % TWO32;
  view.setUint32(pos, lo, true);
  view.setUint32(pos + 4, uh * 1000 + (l - lo) / TWO32, true);
}

/** The CRC state after the segment salt: every record's CRC continues from it. */
export function saltState(salt: number): number {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, salt, true);
  return crc32cUpdate(0xffffffff, b);
}

/** The CRC32C of the record at `pos` of `length` bytes, salted. */
export function recordCrc(bytes: Uint8Array, pos: number, length: number, salt: number): number {
  return ~crc32cUpdate(salt, bytes, pos + R_LENGTH, pos + length) >>> 0;
}

/**
 * Writes a record header at `pos` (everything but the CRC). `epoch` and `sequence` are safe
 * integers, the timestamp is given in microseconds and stored in nanoseconds.
 */
export function writeRecordHeader(
  view: DataView,
  pos: number,
  length: number,
  type: number,
  coreId: number,
  epoch: number,
  sequence: number,
  timestampUs: number,
  padLength: number,
): void {
  view.setUint32(pos + R_LENGTH, length, true);
  setU64(view, pos + R_EPOCH, epoch);
  setU64(view, pos + R_SEQUENCE, sequence);
  setNsFromUs(view, pos + R_TIMESTAMP, timestampUs);
  view.setUint8(pos + R_TYPE, type);
  view.setUint8(pos + R_FLAGS, 0);
  view.setUint16(pos + R_CORE, coreId, true);
  view.setUint16(pos + R_PAD, padLength, true);
}

/** The body of a batch marker: the sequence through which records were acknowledged. */
export function batchMarkerClaim(view: DataView, pos: number): number {
  return getU64(view, pos + RECORD_HEADER_BYTES);
}

/**
 * Writes a batch marker at `pos` (version 2) whose sequence field is `sequence`, the sequence of
 * the batch's first record. Its claim and CRC are filled in by {@linkcode sealBatchMarker} when
 * the batch is submitted.
 */
export function writeBatchMarker(
  view: DataView,
  pos: number,
  coreId: number,
  epoch: number,
  sequence: number,
  timestampUs: number,
): void {
  writeRecordHeader(
    view,
    pos,
    BATCH_MARKER_BYTES,
    RecordType.batch,
    coreId,
    epoch,
    sequence,
    timestampUs,
    0,
  );
}

/** Sets a batch marker's claim (the acknowledged sequence) and its CRC. */
export function sealBatchMarker(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  acknowledgedSequence: number,
  salt: number,
): void {
  setU64(view, pos + RECORD_HEADER_BYTES, acknowledgedSequence);
  view.setUint32(pos + R_CRC, recordCrc(bytes, pos, BATCH_MARKER_BYTES, salt), true);
}

/** Reads a little-endian u64 below 2^53 as a number. */
export function getU64(view: DataView, pos: number): number {
  return view.getUint32(pos, true) + view.getUint32(pos + 4, true) * TWO32;
}

/**
 * Reads the sequence of a record as a number (sequences stay below 2^53). Written out rather
 * than through `getU64`: the hot loops that call it are over V8's inlining budget.
 */
export function recordSequence(view: DataView, pos: number): number {
  return view.getUint32(pos + R_SEQUENCE, true) +
    view.getUint32(pos + R_SEQUENCE + 4, true) * TWO32;
}

/** Reads the epoch of a record as a number. */
export function recordEpoch(view: DataView, pos: number): number {
  return getU64(view, pos + R_EPOCH);
}

/**
 * Reads the timestamp of a record as a number of nanoseconds, rounded to a double: enough to
 * compare timestamps for order (rounding never inverts it), not to print them.
 */
export function recordTimestamp(view: DataView, pos: number): number {
  return view.getInt32(pos + R_TIMESTAMP + 4, true) * TWO32 +
    view.getUint32(pos + R_TIMESTAMP, true);
}
