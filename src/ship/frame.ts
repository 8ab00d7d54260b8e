/**
 * The framing of a shipped message: a run of one core's consecutive entries, as WAL records
 * (`docs/FORMAT.md`, "Records"; an atomic batch stays one record), behind a 32-byte header and
 * followed by a CRC32C of the whole message. Pure: no I/O. `docs/SHIPPING.md` describes every
 * byte.
 *
 * @module
 */

import { crc32c } from "../crc32c.ts";
import { PerCoreWalError } from "../errors.ts";
import {
  getU64,
  MAX_RECORD_BYTES_LIMIT,
  R_CRC,
  R_EPOCH,
  R_TIMESTAMP,
  R_TYPE,
  RECORD_HEADER_BYTES,
  recordCrc,
  recordSequence,
  RecordType,
  saltState,
  setU64,
  writeRecordHeader,
} from "../format_layout.ts";
import { u64IsSafe } from "../numbers.ts";
import { bodyLength, writeBody } from "../operation_encode.ts";
import { batchBodyLength, writeBatchBody } from "../batch_record.ts";
import { checkRecord, decodeBatchRecord, decodeRecord } from "../record_decode.ts";
import type { PerCoreWalEntry, WalOperation } from "../types.ts";

/** The framing version this module writes and reads. */
export const FRAME_VERSION = 1;
/** The first four bytes of every message: `PCWS`. */
export const FRAME_MAGIC = 0x53574350;
/** Bytes of the message header. */
export const FRAME_HEADER_BYTES = 32;
/** Bytes of the trailing CRC32C. */
export const FRAME_CRC_BYTES = 4;
/**
 * Flag bit 0 of byte 5: a gap marker. It carries no record: its first and last sequences name a
 * range of the core's entries given up unshipped (`onUnshippedLimit: "dropOldest"`), declared so
 * that readers accept the gap (and report it) instead of refusing it.
 */
export const FRAME_FLAG_GAP = 0x01;
/** The salt of the records' own CRCs inside a message (`"SHIP"` as a little-endian u32). */
export const FRAME_RECORD_SALT = 0x50494853;

const SALT_STATE = saltState(FRAME_RECORD_SALT);

/** A decoded, verified message. */
export interface DecodedFrame {
  /** The core whose entries it carries. */
  coreId: number;
  /** The sequence of its first entry. */
  firstSequence: number;
  /** The sequence of its last entry. */
  lastSequence: number;
  /** Its entries, in sequence order (an atomic batch's entries carry `batchLast`). */
  entries: PerCoreWalEntry[];
  /**
   * True for a gap marker: no entries; `firstSequence` to `lastSequence` were given up
   * unshipped, on purpose.
   */
  gap?: boolean;
}

/**
 * An upper bound of the bytes `entry` adds to a message (its record as if it were alone): what
 * the shipper's byte limit counts.
 */
export function frameEntryBytes(entry: PerCoreWalEntry): number {
  return RECORD_HEADER_BYTES + 4 + 5 + bodyLength(entry.operation);
}

/** The records of `entries`: runs of one atomic batch become one record. */
function _records(entries: readonly PerCoreWalEntry[]): PerCoreWalEntry[][] {
  const out: PerCoreWalEntry[][] = [];
  for (let i = 0; i < entries.length;) {
    const e = entries[i];
    if (e.batchLast === undefined) {
      out.push([e]);
      i++;
      continue;
    }
    const n = e.batchLast - e.sequence + 1;
    const run = entries.slice(i, i + n);
    if (run.length !== n || run[run.length - 1].batchLast !== e.batchLast) {
      throw new RangeError(
        `entries of core ${e.coreId} split the atomic batch ending at sequence ${e.batchLast}`,
      );
    }
    out.push(run);
    i += n;
  }
  return out;
}

/**
 * Encodes a run of one core's consecutive entries (at least one; an atomic batch whole) into
 * one message. Throws `RangeError` for entries of several cores, a gap, or a split batch.
 */
export function encodeFrame(entries: readonly PerCoreWalEntry[]): Uint8Array {
  if (entries.length === 0) throw new RangeError("a message holds at least one entry");
  const coreId = entries[0].coreId;
  const first = entries[0].sequence;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.coreId !== coreId) {
      throw new RangeError(`a message holds one core's entries: ${coreId} and ${e.coreId}`);
    }
    if (e.sequence !== first + i) {
      throw new RangeError(
        `core ${coreId}: sequence ${e.sequence} where ${first + i} was expected`,
      );
    }
  }
  const records = _records(entries);
  const lengths = records.map((r) =>
    RECORD_HEADER_BYTES +
    (r[0].batchLast === undefined
      ? bodyLength(r[0].operation)
      : batchBodyLength(r.map((e) => e.operation)))
  );
  const total = FRAME_HEADER_BYTES + lengths.reduce((a, b) => a + b, 0) + FRAME_CRC_BYTES;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  bytes[4] = FRAME_VERSION;
  bytes[5] = 0;
  view.setUint16(6, coreId, true);
  setU64(view, 8, first);
  setU64(view, 16, first + entries.length - 1);
  view.setUint32(24, records.length, true);
  let pos = FRAME_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const e = r[0];
    const length = lengths[i];
    const batch = e.batchLast !== undefined;
    const type = batch ? RecordType.atomicBatch : RecordType[e.operation.type];
    writeRecordHeader(view, pos, length, type, coreId, e.epoch, e.sequence, 0, 0);
    view.setBigInt64(pos + R_TIMESTAMP, e.timestampNs, true);
    const ops: WalOperation[] = r.map((x) => x.operation);
    if (batch) writeBatchBody(ops, bytes, view, pos + RECORD_HEADER_BYTES);
    else writeBody(e.operation, bytes, view, pos + RECORD_HEADER_BYTES);
    view.setUint32(pos + R_CRC, recordCrc(bytes, pos, length, SALT_STATE), true);
    pos += length;
  }
  view.setUint32(pos, crc32c(bytes, 0, pos), true);
  return bytes;
}

/**
 * Encodes a gap marker (flag {@linkcode FRAME_FLAG_GAP}): core `coreId`'s sequences `first` to
 * `last` were given up unshipped. A header, no record, and the checksum: 36 bytes.
 */
export function encodeGapFrame(coreId: number, first: number, last: number): Uint8Array {
  if (!Number.isInteger(coreId) || coreId < 0 || coreId > 0xffff) {
    throw new RangeError(`coreId must be an integer from 0 to 65535, got ${coreId}`);
  }
  if (!Number.isSafeInteger(first) || first < 1 || !Number.isSafeInteger(last) || last < first) {
    throw new RangeError(`a gap runs from a sequence of at least 1 on, got ${first} to ${last}`);
  }
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + FRAME_CRC_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  bytes[4] = FRAME_VERSION;
  bytes[5] = FRAME_FLAG_GAP;
  view.setUint16(6, coreId, true);
  setU64(view, 8, first);
  setU64(view, 16, last);
  view.setUint32(FRAME_HEADER_BYTES, crc32c(bytes, 0, FRAME_HEADER_BYTES), true);
  return bytes;
}

/** The core, first and last sequence a message's header claims (not verified: see decode). */
export function frameHeader(
  bytes: Uint8Array,
): { coreId: number; firstSequence: number; lastSequence: number } | undefined {
  if (bytes.length < FRAME_HEADER_BYTES + FRAME_CRC_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== FRAME_MAGIC) return undefined;
  return {
    coreId: view.getUint16(6, true),
    firstSequence: getU64(view, 8),
    lastSequence: getU64(view, 16),
  };
}

function _bad(code: "ChecksumMismatch" | "Corrupted", reason: string): PerCoreWalError {
  return new PerCoreWalError(code, `Cannot decode shipped message: ${reason}`);
}

/**
 * Decodes and verifies a message: magic, version, its CRC32C, every record as the WAL's reader
 * checks it, and that the records hold exactly the header's consecutive sequences. Throws
 * `PerCoreWalError` (`ChecksumMismatch` or `Corrupted`) saying what is wrong.
 */
export function decodeFrame(input: Uint8Array): DecodedFrame {
  const bytes = input;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < FRAME_HEADER_BYTES + FRAME_CRC_BYTES) {
    throw _bad("Corrupted", `${bytes.length} bytes, shorter than a header and a checksum`);
  }
  if (view.getUint32(0, true) !== FRAME_MAGIC) throw _bad("Corrupted", "bad magic");
  if (bytes[4] !== FRAME_VERSION) throw _bad("Corrupted", `unknown version ${bytes[4]}`);
  const end = bytes.length - FRAME_CRC_BYTES;
  if (crc32c(bytes, 0, end) !== view.getUint32(end, true)) {
    throw _bad("ChecksumMismatch", "checksum mismatch");
  }
  if (bytes[5] !== 0 && bytes[5] !== FRAME_FLAG_GAP) {
    throw _bad("Corrupted", `unknown flags ${bytes[5]}`);
  }
  const coreId = view.getUint16(6, true);
  // The one rule for numbers (types.ts): a u64 above 2^53 - 1 is refused, never rounded.
  if (!u64IsSafe(view, 8) || !u64IsSafe(view, 16)) {
    throw _bad("Corrupted", "sequence above 2^53 - 1");
  }
  const first = getU64(view, 8);
  const last = getU64(view, 16);
  const count = view.getUint32(24, true);
  if (first < 1 || last < first) throw _bad("Corrupted", `sequences ${first} to ${last}`);
  if (bytes[5] === FRAME_FLAG_GAP) {
    if (count !== 0 || end !== FRAME_HEADER_BYTES || view.getUint32(28, true) !== 0) {
      throw _bad("Corrupted", "a gap marker with records or reserved bytes set");
    }
    return { coreId, firstSequence: first, lastSequence: last, entries: [], gap: true };
  }
  const ctx = { salt: SALT_STATE, coreId, maxRecordBytes: MAX_RECORD_BYTES_LIMIT, version: 3 };
  const entries: PerCoreWalEntry[] = [];
  let pos = FRAME_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const c = checkRecord(bytes, view, pos, end, ctx);
    if (c.status !== "ok") {
      const why = c.status === "bad" ? c.reason : `${c.status} record`;
      throw _bad("Corrupted", `record ${i} at offset ${pos}: ${why}`);
    }
    const next = first + entries.length;
    const type = bytes[pos + R_TYPE];
    const sequence = recordSequence(view, pos);
    if (sequence !== next) {
      throw _bad("Corrupted", `record ${i} has sequence ${sequence} where ${next} was expected`);
    }
    if (type === RecordType.batch) throw _bad("Corrupted", `record ${i} is a batch marker`);
    if (type === RecordType.atomicBatch) {
      const ops = decodeBatchRecord(bytes, view, pos);
      const epoch = getU64(view, pos + R_EPOCH);
      const timestampNs = view.getBigInt64(pos + R_TIMESTAMP, true);
      const batchLast = next + ops.length - 1;
      ops.forEach((operation, j) =>
        entries.push({ coreId, epoch, sequence: next + j, timestampNs, operation, batchLast })
      );
    } else {
      entries.push(decodeRecord(bytes, view, pos));
    }
    pos += c.length;
  }
  if (pos !== end) throw _bad("Corrupted", `${end - pos} bytes after the last record`);
  if (first + entries.length - 1 !== last) {
    throw _bad("Corrupted", `records end at sequence ${first + entries.length - 1}, not ${last}`);
  }
  return { coreId, firstSequence: first, lastSequence: last, entries };
}
