/**
 * Records on their way out: checking what lies at a position of a segment (a record, zeros, a
 * record cut short, or damage) and decoding a checked record into an entry. Pure: no I/O.
 *
 * @module
 */

import {
  batchMarkerClaim,
  getU64,
  MAX_KEY_BYTES,
  R_CORE,
  R_CRC,
  R_EPOCH,
  R_FLAGS,
  R_LENGTH,
  R_PAD,
  R_SEQUENCE,
  R_TIMESTAMP,
  R_TYPE,
  RECORD_HEADER_BYTES,
  recordCrc,
  recordSequence,
  RecordType,
} from "./format_layout.ts";
import { checkBatchBody, decodeBatchOperations } from "./batch_record.ts";
import { getSafeI64, i64IsSafe, u64IsSafe } from "./numbers.ts";
import type { CommitOperation, PerCoreWalEntry, WalOperation } from "./types.ts";

const decoder = new TextDecoder();

/** What {@linkcode checkRecord} found at a position. */
export type RecordCheck =
  | { status: "ok"; length: number }
  | { status: "zero" }
  | { status: "incomplete"; length: number }
  | { status: "bad"; code: "ChecksumMismatch" | "Corrupted"; reason: string };

/** What a decoder needs to know about the segment it reads. */
export interface DecodeContext {
  /** The CRC state after the segment's salt ({@linkcode saltState}). */
  salt: number;
  /** The core the segment belongs to. */
  coreId: number;
  /** The largest record (without padding) that is accepted. */
  maxRecordBytes: number;
  /** The segment's format version; batch markers are records from version 2 on. Default 1. */
  version?: number;
}

const ZERO: RecordCheck = { status: "zero" };

/**
 * Checks the record at `pos`, with bytes available up to `end`: length range, CRC, header
 * fields and body structure. Does not check sequence order (the reader does).
 */
export function checkRecord(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  end: number,
  ctx: DecodeContext,
): RecordCheck {
  if (end - pos < 8) {
    for (let i = pos; i < end; i++) if (bytes[i] !== 0) return { status: "incomplete", length: 8 };
    return end === pos ? { status: "incomplete", length: 8 } : ZERO;
  }
  const length = view.getUint32(pos + R_LENGTH, true);
  if (length === 0 && view.getUint32(pos + R_CRC, true) === 0) return ZERO;
  if (length < RECORD_HEADER_BYTES || length > ctx.maxRecordBytes + MAX_KEY_BYTES) {
    return { status: "bad", code: "Corrupted", reason: `record length ${length} out of range` };
  }
  if (length > end - pos) return { status: "incomplete", length };
  if (recordCrc(bytes, pos, length, ctx.salt) !== view.getUint32(pos + R_CRC, true)) {
    return { status: "bad", code: "ChecksumMismatch", reason: "checksum mismatch" };
  }
  const reason = _checkFields(bytes, view, pos, length, ctx) ??
    (bytes[pos + R_TYPE] === RecordType.batch ? _checkMarker(view, pos, ctx) : undefined);
  return reason === undefined
    ? { status: "ok", length }
    : { status: "bad", code: "Corrupted", reason };
}

function _checkFields(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  length: number,
  ctx: DecodeContext,
): string | undefined {
  const type = bytes[pos + R_TYPE];
  if (bytes[pos + R_FLAGS] !== 0) return `unknown record flags ${bytes[pos + R_FLAGS]}`;
  const core = view.getUint16(pos + R_CORE, true);
  if (core !== ctx.coreId) return `record of core ${core} in a segment of core ${ctx.coreId}`;
  // The one rule for numbers (types.ts): a u64 above 2^53 - 1, which this module never writes,
  // is refused here rather than rounded by the decoder.
  if (!u64IsSafe(view, pos + R_SEQUENCE)) return "sequence above 2^53 - 1";
  if (!u64IsSafe(view, pos + R_EPOCH)) return "epoch above 2^53 - 1";
  const pad = view.getUint16(pos + R_PAD, true);
  const bodyEnd = pos + length - pad;
  if (bodyEnd < pos + RECORD_HEADER_BYTES) return `padding ${pad} longer than the record`;
  if (length - pad > ctx.maxRecordBytes) return `record of ${length - pad} bytes above the limit`;
  for (let i = bodyEnd; i < pos + length; i++) if (bytes[i] !== 0) return "non-zero padding";
  const body = bodyEnd - pos - RECORD_HEADER_BYTES;
  const b = pos + RECORD_HEADER_BYTES;
  switch (type) {
    case RecordType.put:
      if (body < 2 || 2 + view.getUint16(b, true) > body) return "put key longer than the body";
      return undefined;
    case RecordType.delete:
      return body > MAX_KEY_BYTES ? "delete key too long" : undefined;
    case RecordType.checkpoint:
    case RecordType.epochBarrier:
    case RecordType.batch:
      if (body !== 8) return `body of ${body} bytes, expected 8`;
      return u64IsSafe(view, b) ? undefined : "body value above 2^53 - 1";
    case RecordType.commit:
      return _checkCommit(bytes, view, b, bodyEnd);
    case RecordType.atomicBatch:
      // An older reader would take this type for damage: only segments of version 3 hold it.
      if ((ctx.version ?? 1) < 3) return `atomic batch in a version ${ctx.version ?? 1} segment`;
      return checkBatchBody(bytes, view, b, bodyEnd, _checkCommit);
    default:
      return `unknown record type ${type}`;
  }
}

function _checkMarker(view: DataView, pos: number, ctx: DecodeContext): string | undefined {
  if ((ctx.version ?? 1) < 2) return "batch marker in a version 1 segment";
  // Acknowledged records all come before the batch: the claim is below its sequence.
  return batchMarkerClaim(view, pos) < recordSequence(view, pos)
    ? undefined
    : "batch marker claims its own records were acknowledged";
}
function _checkCommit(bytes: Uint8Array, view: DataView, p: number, end: number) {
  if (end - p < 3) return "commit body too short";
  const n = view.getUint16(p, true);
  p += 2;
  for (let i = 0; i < n; i++) {
    if (end - p < 2) return "commit body too short";
    const len = view.getUint16(p, true);
    p += 2 + len + 8;
    if (p > end) return "commit body too short";
    if (!u64IsSafe(view, p - 8)) return "commit offset above 2^53 - 1";
  }
  if (p >= end) return "commit body too short";
  const flag = bytes[p];
  if (flag > 1) return "bad watermark flag";
  if (p + 1 + flag * 8 !== end) return "commit body length mismatch";
  return flag === 1 && !i64IsSafe(view, p + 1) ? "watermark beyond 2^53 - 1" : undefined;
}

// Small keys and values are copied into shared 64 KiB arenas: one ArrayBuffer allocation per
// record was half the cost of decoding. A view keeps its arena alive (at most 64 KiB).
const ARENA = 64 * 1024;
let _arena = new Uint8Array(ARENA);
let _arenaPos = 0;

function _copy(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n > 4096) return bytes.slice(start, end);
  const at = _arenaTake(n);
  _arena.set(bytes.subarray(start, end), at);
  return new Uint8Array(_arena.buffer, at, n);
}

/** Reserves `n` bytes of the arena (n ≤ 4096); returns their offset. */
function _arenaTake(n: number): number {
  if (_arenaPos + n > ARENA) {
    _arena = new Uint8Array(ARENA);
    _arenaPos = 0;
  }
  const at = _arenaPos;
  _arenaPos += (n + 7) & ~7;
  return at;
}

/**
 * A copy of bytes `[from, to)` of a decoding buffer, made once for many records (a reader's
 * window): the keys and values of the records wholly inside it are views of it, with no copy of
 * their own. The copy must never be written to afterwards.
 */
export interface DecodeCopy {
  /** The copy: buffer byte `from` is at offset 0. */
  buffer: ArrayBuffer;
  /** The first buffer offset copied. */
  from: number;
  /** The end of the copied range. */
  to: number;
}

/**
 * Decodes a record that {@linkcode checkRecord} found `ok`. Copies keys and values (small ones
 * into views of a shared arena; they are never overwritten), or views them in `copy` when the
 * record lies in it. `epoch` and `timestampNs`, when given, are the record's already decoded
 * (a reader reuses one bigint per run of equal timestamps: a batch's records share theirs).
 */
export function decodeRecord(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  epoch?: number,
  copy?: DecodeCopy,
  timestampNs?: bigint,
): PerCoreWalEntry {
  const length = view.getUint32(pos + R_LENGTH, true);
  const bodyEnd = pos + length - view.getUint16(pos + R_PAD, true);
  const b = pos + RECORD_HEADER_BYTES;
  let operation: WalOperation;
  switch (bytes[pos + R_TYPE]) {
    case RecordType.put: {
      const k = view.getUint16(b, true);
      const n = bodyEnd - b - 2;
      if (copy !== undefined && pos >= copy.from && bodyEnd <= copy.to) {
        const at = b + 2 - copy.from;
        operation = {
          type: "put",
          key: new Uint8Array(copy.buffer, at, k),
          value: new Uint8Array(copy.buffer, at + k, n - k),
        };
        break;
      }
      if (n > 4096) {
        operation = {
          type: "put",
          key: _copy(bytes, b + 2, b + 2 + k),
          value: _copy(bytes, b + 2 + k, bodyEnd),
        };
        break;
      }
      // Key and value are adjacent: one copy, two views (a view costs less than a `subarray`).
      const at = _arenaTake(n);
      const arena = _arena;
      arena.set(bytes.subarray(b + 2, bodyEnd), at);
      operation = {
        type: "put",
        key: new Uint8Array(arena.buffer, at, k),
        value: new Uint8Array(arena.buffer, at + k, n - k),
      };
      break;
    }
    case RecordType.delete:
      operation = {
        type: "delete",
        key: copy !== undefined && pos >= copy.from && bodyEnd <= copy.to
          ? new Uint8Array(copy.buffer, b - copy.from, bodyEnd - b)
          : _copy(bytes, b, bodyEnd),
      };
      break;
    case RecordType.checkpoint:
      operation = { type: "checkpoint", id: getU64(view, b) };
      break;
    case RecordType.epochBarrier:
      operation = { type: "epochBarrier", epoch: getU64(view, b) };
      break;
    default:
      operation = _decodeCommit(bytes, view, b);
  }
  return {
    coreId: view.getUint16(pos + R_CORE, true),
    epoch: epoch ?? getU64(view, pos + R_EPOCH),
    sequence: recordSequence(view, pos),
    timestampNs: timestampNs ?? view.getBigInt64(pos + R_TIMESTAMP, true),
    operation,
  };
}

/**
 * The operations of a checked atomic batch record at `pos` (format version 3), in order: the
 * reader hands them out as consecutive entries. Keys and values are copies.
 */
export function decodeBatchRecord(bytes: Uint8Array, view: DataView, pos: number): WalOperation[] {
  return decodeBatchOperations(bytes, view, pos, _decodeCommit);
}

/** Decodes the body of a commit at `bodyStart` (its structure already checked). */
function _decodeCommit(bytes: Uint8Array, view: DataView, bodyStart: number): CommitOperation {
  const offsets = new Map<string, number>();
  const n = view.getUint16(bodyStart, true);
  let p = bodyStart + 2;
  for (let i = 0; i < n; i++) {
    const len = view.getUint16(p, true);
    offsets.set(
      decoder.decode(bytes.subarray(p + 2, p + 2 + len)),
      getU64(view, p + 2 + len),
    );
    p += 2 + len + 8;
  }
  const commit: CommitOperation = { type: "commit", offsets };
  if (bytes[p] === 1) commit.watermark = getSafeI64(view, p + 1);
  return commit;
}
