/**
 * The segment header: the 64 bytes that open every segment file, encoded and decoded in memory.
 * Pure: no I/O. `docs/FORMAT.md` ("Segment header") describes every byte.
 *
 * @module
 */

import { crc32cUpdate } from "./crc32c.ts";
import { PerCoreWalError, type PerCoreWalErrorCode } from "./errors.ts";
import {
  FORMAT_VERSION,
  getU64,
  MIN_FORMAT_VERSION,
  SEGMENT_DATA_OFFSET,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  setU64,
} from "./format_layout.ts";
import { u64IsSafe } from "./numbers.ts";

/**
 * The decoded header of a segment file.
 *
 * @example
 * ```ts
 * import { scanSegment, type SegmentHeader } from "@percore/wal";
 *
 * const { header } = await scanSegment("./data/wal/wal-0-000000.log");
 * const h: SegmentHeader | undefined = header;
 * console.log(h?.coreId, h?.segmentIndex, h?.firstSequence);
 * ```
 */
export interface SegmentHeader {
  /** Format version: 3 (2 before atomic batches, 1 before batch markers). */
  version: number;
  /** The owning core. */
  coreId: number;
  /** Index of the segment within its core. */
  segmentIndex: number;
  /** Sequence of the segment's first record. */
  firstSequence: number;
  /** The core's epoch when the segment was created. */
  epoch: number;
  /**
   * Creation time, nanoseconds since the Unix epoch: a `bigint`, the exception to the rule for
   * numbers (types.ts), since nanoseconds since 1970 exceed 2^53.
   */
  createdAtNs: bigint;
  /** Random non-zero salt mixed into every record's CRC (stale records of other files fail). */
  salt: number;
  /** Offset of the first record. */
  dataOffset: number;
}

/** Encodes a segment header into a zeroed 64-byte array with its CRC. */
export function encodeSegmentHeader(h: Omit<SegmentHeader, "version" | "dataOffset">): Uint8Array {
  const b = new Uint8Array(SEGMENT_HEADER_BYTES);
  const v = new DataView(b.buffer);
  b.set(SEGMENT_MAGIC, 0);
  v.setUint16(8, FORMAT_VERSION, true);
  v.setUint16(10, SEGMENT_HEADER_BYTES, true);
  v.setUint32(12, h.coreId, true);
  setU64(v, 16, h.segmentIndex);
  setU64(v, 24, h.firstSequence);
  setU64(v, 32, h.epoch);
  v.setBigInt64(40, h.createdAtNs, true);
  v.setUint32(48, h.salt, true);
  v.setUint32(52, SEGMENT_DATA_OFFSET, true);
  v.setUint32(56, 0, true);
  v.setUint32(60, ~crc32cUpdate(0xffffffff, b, 0, 60) >>> 0, true);
  return b;
}

/**
 * Decodes a segment header. Throws `PerCoreWalError` ("Corrupted", "ChecksumMismatch" or
 * "Unsupported") naming the file.
 */
export function decodeSegmentHeader(bytes: Uint8Array, path = "segment"): SegmentHeader {
  const fail = (code: PerCoreWalErrorCode, why: string) =>
    new PerCoreWalError(code, `Cannot open segment "${path}": ${why}`, {
      segment: path,
      offset: 0,
    });
  if (bytes.length < SEGMENT_HEADER_BYTES) throw fail("Corrupted", "file shorter than its header");
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) throw fail("Corrupted", "not a segment (bad magic)");
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  const crc = ~crc32cUpdate(0xffffffff, bytes, 0, 60) >>> 0;
  if (crc !== v.getUint32(60, true)) throw fail("ChecksumMismatch", "header checksum mismatch");
  const version = v.getUint16(8, true);
  if (version < MIN_FORMAT_VERSION || version > FORMAT_VERSION) {
    throw fail(
      "Unsupported",
      `format version ${version} (this module reads ${MIN_FORMAT_VERSION} to ${FORMAT_VERSION})`,
    );
  }
  const dataOffset = v.getUint32(52, true);
  if (v.getUint16(10, true) !== SEGMENT_HEADER_BYTES || dataOffset !== SEGMENT_DATA_OFFSET) {
    throw fail("Corrupted", "unexpected header or data offset");
  }
  const flags = v.getUint32(56, true);
  if (flags !== 0) throw fail("Unsupported", `unknown header flags ${flags}`);
  // The one rule for numbers (types.ts): a u64 above 2^53 - 1 is refused, never rounded.
  if (!u64IsSafe(v, 16)) throw fail("Corrupted", "segment index above 2^53 - 1");
  if (!u64IsSafe(v, 24)) throw fail("Corrupted", "first sequence above 2^53 - 1");
  if (!u64IsSafe(v, 32)) throw fail("Corrupted", "epoch above 2^53 - 1");
  const salt = v.getUint32(48, true);
  if (salt === 0) throw fail("Corrupted", "zero salt");
  return {
    version,
    coreId: v.getUint32(12, true),
    segmentIndex: getU64(v, 16),
    firstSequence: getU64(v, 24),
    epoch: getU64(v, 32),
    createdAtNs: v.getBigInt64(40, true),
    salt,
    dataOffset,
  };
}
