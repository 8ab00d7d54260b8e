/**
 * On-disk format version 2 (version 1 segments are still read): segment headers and records,
 * encoded and decoded in memory. No I/O here; `docs/FORMAT.md` describes every byte.
 *
 * @module
 */

import { crc32cUpdate } from "./crc32c.ts";
import { PerCoreWalError, type PerCoreWalErrorCode } from "./errors.ts";
import type {
  Bytes,
  CommitOffsets,
  PerCoreWalEntry,
  WalOperation,
  WalOperationInput,
} from "./types.ts";

/**
 * The format version this module writes (it reads versions 1 and 2).
 *
 * @example
 * ```ts
 * import { FORMAT_VERSION } from "@percore/wal";
 *
 * console.log(`this build writes segment format v${FORMAT_VERSION}`);
 * ```
 */
export const FORMAT_VERSION = 2;
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
export const MAX_EPOCH = BigInt(Number.MAX_SAFE_INTEGER);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

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

// ---------------------------------------------------------------------------------------------
// Segment header

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
  /** Format version (1). */
  version: number;
  /** The owning core. */
  coreId: number;
  /** Index of the segment within its core. */
  segmentIndex: number;
  /** Sequence of the segment's first record. */
  firstSequence: bigint;
  /** The core's epoch when the segment was created. */
  epoch: bigint;
  /** Creation time, nanoseconds since the Unix epoch. */
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
  v.setBigUint64(24, h.firstSequence, true);
  v.setBigUint64(32, h.epoch, true);
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
  const segmentIndex = v.getBigUint64(16, true);
  if (segmentIndex > BigInt(Number.MAX_SAFE_INTEGER)) throw fail("Corrupted", "segment index");
  const salt = v.getUint32(48, true);
  if (salt === 0) throw fail("Corrupted", "zero salt");
  return {
    version,
    coreId: v.getUint32(12, true),
    segmentIndex: Number(segmentIndex),
    firstSequence: v.getBigUint64(24, true),
    epoch: v.getBigUint64(32, true),
    createdAtNs: v.getBigInt64(40, true),
    salt,
    dataOffset,
  };
}

// ---------------------------------------------------------------------------------------------
// Operations: validation and encoding

/** Converts `Bytes` to a `Uint8Array`, or throws `TypeError` naming the argument. */
export function toBytes(x: Bytes, what: string): Uint8Array {
  if (x instanceof Uint8Array) return x;
  if (typeof x === "string") return encoder.encode(x);
  throw new TypeError(`${what} must be a Uint8Array or a string, got ${_describe(x)}`);
}

/** Validates a key's type and size. */
export function toKey(key: Bytes): Uint8Array {
  const k = toBytes(key, "key");
  if (k.length > MAX_KEY_BYTES) {
    throw new RangeError(`key is ${k.length} bytes; keys are at most ${MAX_KEY_BYTES} bytes`);
  }
  return k;
}

function _describe(x: unknown): string {
  if (x === null) return "null";
  if (typeof x === "object") return (x as object).constructor?.name ?? "object";
  return typeof x;
}

function _u64(x: unknown, what: string): bigint {
  const n = typeof x === "number" && Number.isSafeInteger(x) ? BigInt(x) : x;
  if (typeof n !== "bigint") throw new TypeError(`${what} must be a bigint, got ${_describe(x)}`);
  if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`${what} ${n} is not a u64`);
  return n;
}

function _i64(x: unknown, what: string): bigint {
  const n = typeof x === "number" && Number.isSafeInteger(x) ? BigInt(x) : x;
  if (typeof n !== "bigint") throw new TypeError(`${what} must be a bigint, got ${_describe(x)}`);
  if (n < -0x8000000000000000n || n > 0x7fffffffffffffffn) {
    throw new RangeError(`${what} ${n} is not an i64`);
  }
  return n;
}

/** Validates commit offsets and returns them as a Map. */
export function toOffsets(offsets: CommitOffsets): Map<string, bigint> {
  if (offsets === null || typeof offsets !== "object") {
    throw new TypeError(`offsets must be a Map or an object, got ${_describe(offsets)}`);
  }
  const entries = offsets instanceof Map ? offsets.entries() : Object.entries(offsets);
  const out = new Map<string, bigint>();
  for (const [name, off] of entries) {
    if (typeof name !== "string") throw new TypeError("offset source names must be strings");
    if (encoder.encode(name).length > MAX_KEY_BYTES) {
      throw new RangeError(`source name "${name.slice(0, 40)}..." is longer than 65535 bytes`);
    }
    out.set(name, _u64(off, `offset of source "${name}"`));
  }
  if (out.size > 0xffff) throw new RangeError("a commit holds at most 65535 sources");
  return out;
}

/** Validates an operation as `append(op)` accepts it and returns its stored form. */
export function normalizeOperation(op: WalOperationInput, currentEpoch: bigint): WalOperation {
  if (op === null || typeof op !== "object") {
    throw new TypeError(`operation must be an object, got ${_describe(op)}`);
  }
  switch (op.type) {
    case "put":
      return { type: "put", key: toKey(op.key), value: toBytes(op.value, "value") };
    case "delete":
      return { type: "delete", key: toKey(op.key) };
    case "checkpoint":
      return { type: "checkpoint", id: _u64(op.id, "checkpoint id") };
    case "commit": {
      const c: WalOperation = { type: "commit", offsets: toOffsets(op.offsets) };
      if (op.watermark !== undefined) c.watermark = _i64(op.watermark, "watermark");
      return c;
    }
    case "epochBarrier": {
      const epoch = op.epoch === undefined ? currentEpoch : _u64(op.epoch, "barrier epoch");
      // Epochs are kept as numbers in the engines: they stay below 2^53.
      if (epoch > MAX_EPOCH) throw new RangeError(`barrier epoch ${epoch} is above 2^53 - 1`);
      return { type: "epochBarrier", epoch };
    }
    default:
      throw new TypeError(
        `unknown operation type ${JSON.stringify((op as { type: unknown }).type)}`,
      );
  }
}

/** Bytes of the record body of `op` (everything after the 38-byte header). */
export function bodyLength(op: WalOperation): number {
  switch (op.type) {
    case "put":
      return 2 + op.key.length + op.value.length;
    case "delete":
      return op.key.length;
    case "checkpoint":
    case "epochBarrier":
      return 8;
    case "commit": {
      let n = 2 + 1 + (op.watermark === undefined ? 0 : 8);
      for (const name of op.offsets.keys()) n += 2 + encoder.encode(name).length + 8;
      return n;
    }
  }
}

/** Writes the body of `op` at `pos`. */
export function writeBody(op: WalOperation, bytes: Uint8Array, view: DataView, pos: number): void {
  switch (op.type) {
    case "put":
      view.setUint16(pos, op.key.length, true);
      bytes.set(op.key, pos + 2);
      bytes.set(op.value, pos + 2 + op.key.length);
      return;
    case "delete":
      bytes.set(op.key, pos);
      return;
    case "checkpoint":
      view.setBigUint64(pos, op.id, true);
      return;
    case "epochBarrier":
      view.setBigUint64(pos, op.epoch, true);
      return;
    case "commit": {
      view.setUint16(pos, op.offsets.size, true);
      let p = pos + 2;
      for (const [name, off] of op.offsets) {
        const nb = encoder.encode(name);
        view.setUint16(p, nb.length, true);
        bytes.set(nb, p + 2);
        view.setBigUint64(p + 2 + nb.length, off, true);
        p += 2 + nb.length + 8;
      }
      if (op.watermark === undefined) {
        bytes[p] = 0;
      } else {
        bytes[p] = 1;
        view.setBigInt64(p + 1, op.watermark, true);
      }
      return;
    }
  }
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

// ---------------------------------------------------------------------------------------------
// Decoding

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
      return body === 8 ? undefined : `body of ${body} bytes, expected 8`;
    case RecordType.commit:
      return _checkCommit(bytes, view, b, bodyEnd);
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

function _checkCommit(bytes: Uint8Array, view: DataView, p: number, end: number) {
  if (end - p < 3) return "commit body too short";
  const n = view.getUint16(p, true);
  p += 2;
  for (let i = 0; i < n; i++) {
    if (end - p < 2) return "commit body too short";
    const len = view.getUint16(p, true);
    p += 2 + len + 8;
    if (p > end) return "commit body too short";
  }
  if (p >= end) return "commit body too short";
  const flag = bytes[p];
  if (flag > 1) return "bad watermark flag";
  return p + 1 + flag * 8 === end ? undefined : "commit body length mismatch";
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
 * record lies in it. `epoch` and `timestampNs`, when given, are the record's already as bigints
 * (a reader reuses one per run of equal values: a batch's records share their timestamp).
 */
export function decodeRecord(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  epoch?: bigint,
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
      operation = { type: "checkpoint", id: view.getBigUint64(b, true) };
      break;
    case RecordType.epochBarrier:
      operation = { type: "epochBarrier", epoch: view.getBigUint64(b, true) };
      break;
    default: {
      const offsets = new Map<string, bigint>();
      const n = view.getUint16(b, true);
      let p = b + 2;
      for (let i = 0; i < n; i++) {
        const len = view.getUint16(p, true);
        offsets.set(
          decoder.decode(bytes.subarray(p + 2, p + 2 + len)),
          view.getBigUint64(p + 2 + len, true),
        );
        p += 2 + len + 8;
      }
      operation = { type: "commit", offsets };
      if (bytes[p] === 1) operation.watermark = view.getBigInt64(p + 1, true);
    }
  }
  return {
    coreId: view.getUint16(pos + R_CORE, true),
    epoch: epoch ?? view.getBigUint64(pos + R_EPOCH, true),
    sequence: view.getBigUint64(pos + R_SEQUENCE, true),
    timestampNs: timestampNs ?? view.getBigInt64(pos + R_TIMESTAMP, true),
    operation,
  };
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
