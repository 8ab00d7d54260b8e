/**
 * The atomic batch record (format version 3, `RecordType.atomicBatch`): several operations of
 * one core in one record, so that one CRC covers them all and a crash keeps all of them or none.
 * Validating the operations, encoding the body, checking it and decoding it back into its
 * operations. Pure: no I/O. `docs/FORMAT.md` ("Atomic batch") describes every byte.
 *
 * Body: u32 count (≥ 1), then `count` times: u8 type, u32 body length, the operation's body
 * exactly as its own record's body would be (section 5). Only put, delete and commit are allowed.
 *
 * @module
 */

import { bodyLength, normalizeOperation, writeBody } from "./operation_encode.ts";
import { R_LENGTH, R_PAD, RECORD_HEADER_BYTES, RecordType } from "./format_layout.ts";
import type { Bytes, CommitOffsets, WalOperation } from "./types.ts";

/**
 * An operation that `appendBatch` takes: a put, a delete or a commit (checkpoints, epoch
 * barriers and batches are refused with a `TypeError`).
 *
 * @example
 * ```ts
 * import type { BatchOperationInput } from "@percore/wal";
 *
 * const ops: BatchOperationInput[] = [
 *   { type: "put", key: "order:1", value: "{}" },
 *   { type: "commit", offsets: { orders: 1 } },
 * ];
 * console.log(ops.length);
 * ```
 */
export type BatchOperationInput =
  | { type: "put"; key: Bytes; value: Bytes }
  | { type: "delete"; key: Bytes }
  | { type: "commit"; offsets: CommitOffsets; watermark?: number };

/** Bytes of the body before its operations: the u32 count. */
const COUNT_BYTES = 4;
/** Bytes before each operation's body: u8 type and u32 length. */
const OP_HEADER_BYTES = 5;

/**
 * Validates the operations of a batch and returns their stored form, with every key and value
 * copied (a caller's buffer changed later, or between an async wait and the write, changes
 * nothing). Throws before anything is claimed: `TypeError` for a forbidden or malformed
 * operation or a non-iterable, `RangeError` for an empty batch (or a bad key, offset...).
 */
export function normalizeBatch(ops: Iterable<BatchOperationInput>): WalOperation[] {
  return _validated(ops, (n) => {
    if (n.type === "put") return { type: "put", key: n.key.slice(), value: n.value.slice() };
    if (n.type === "delete") return { type: "delete", key: n.key.slice() };
    return n; // a commit's offsets are already a copy (a new Map)
  });
}

/**
 * Bytes of the record that `appendBatch(ops)` writes (without padding): what must not exceed
 * `maxRecordBytes`. Checks the operations as `appendBatch` does (and throws as it does), without
 * copying them: to split work into batches that fit before appending any of them.
 *
 * @example
 * ```ts
 * import { batchRecordBytes } from "@percore/wal";
 *
 * const bytes = batchRecordBytes([
 *   { type: "put", key: "a", value: "1" },
 *   { type: "delete", key: "b" },
 * ]);
 * console.log(bytes); // 38 + 4 + (5 + 4) + (5 + 1) = 57
 * ```
 */
export function batchRecordBytes(ops: Iterable<BatchOperationInput>): number {
  return RECORD_HEADER_BYTES + batchBodyLength(_validated(ops, (n) => n));
}

/** Every operation of `ops` checked (forbidden types refused), mapped by `keep`. */
function _validated(
  ops: Iterable<BatchOperationInput>,
  keep: (op: WalOperation) => WalOperation,
): WalOperation[] {
  if (
    ops === null || typeof ops !== "object" ||
    typeof (ops as Iterable<unknown>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError("a batch must be an array (or an iterable) of operations");
  }
  const out: WalOperation[] = [];
  for (const op of ops) {
    const type = op !== null && typeof op === "object" ? (op as { type: unknown }).type : op;
    if (type === "checkpoint" || type === "epochBarrier" || type === "batch") {
      throw new TypeError(
        `operation ${out.length} of the batch is a ${type} operation: a batch holds puts, deletes and commits`,
      );
    }
    // normalizeOperation refuses anything else with a TypeError naming it.
    out.push(keep(normalizeOperation(op, 0)));
  }
  if (out.length === 0) throw new RangeError("a batch needs at least one operation");
  return out;
}

/** Bytes of the body of an atomic batch of `ops` (after the 38-byte record header). */
export function batchBodyLength(ops: readonly WalOperation[]): number {
  let n = COUNT_BYTES;
  for (const op of ops) n += OP_HEADER_BYTES + bodyLength(op);
  return n;
}

/** Writes the body of an atomic batch of `ops` at `pos`. */
export function writeBatchBody(
  ops: readonly WalOperation[],
  bytes: Uint8Array,
  view: DataView,
  pos: number,
): void {
  view.setUint32(pos, ops.length, true);
  let p = pos + COUNT_BYTES;
  for (const op of ops) {
    const n = bodyLength(op);
    view.setUint8(p, RecordType[op.type]);
    view.setUint32(p + 1, n, true);
    writeBody(op, bytes, view, p + OP_HEADER_BYTES);
    p += OP_HEADER_BYTES + n;
  }
}

/**
 * How many sequences the record at `pos` takes: its count for an atomic batch, 1 for any other
 * entry. (The engine takes a run of records in sequence order with it.)
 */
export function recordSpan(bytes: Uint8Array, view: DataView, pos: number, type: number): number {
  return type === RecordType.atomicBatch && bytes.length >= pos + RECORD_HEADER_BYTES + 4
    ? view.getUint32(pos + RECORD_HEADER_BYTES, true)
    : 1;
}

/**
 * Checks the body of an atomic batch in `[b, end)`: the count, each operation's type (put,
 * delete, commit) and its body as its own record's would be checked, and that the operations
 * fill the body exactly. Returns the reason it is malformed, or undefined.
 */
export function checkBatchBody(
  bytes: Uint8Array,
  view: DataView,
  b: number,
  end: number,
  checkCommit: (bytes: Uint8Array, view: DataView, p: number, end: number) => string | undefined,
): string | undefined {
  if (end - b < COUNT_BYTES) return "batch body too short";
  const count = view.getUint32(b, true);
  if (count === 0) return "empty batch";
  let p = b + COUNT_BYTES;
  for (let i = 0; i < count; i++) {
    if (end - p < OP_HEADER_BYTES) return `batch operation ${i} runs past the body`;
    const type = bytes[p];
    const n = view.getUint32(p + 1, true);
    const s = p + OP_HEADER_BYTES;
    if (n > end - s) return `batch operation ${i} runs past the body`;
    switch (type) {
      case RecordType.put:
        if (n < 2 || 2 + view.getUint16(s, true) > n) {
          return `batch operation ${i}: put key longer than its body`;
        }
        break;
      case RecordType.delete:
        if (n > 0xffff) return `batch operation ${i}: delete key too long`;
        break;
      case RecordType.commit: {
        const reason = checkCommit(bytes, view, s, s + n);
        if (reason !== undefined) return `batch operation ${i}: ${reason}`;
        break;
      }
      default:
        return `batch operation ${i} has type ${type}, not put, delete or commit`;
    }
    p = s + n;
  }
  return p === end ? undefined : "batch body length mismatch";
}

/**
 * Decodes the operations of the checked atomic batch record at `pos` (keys and values are
 * copies), with `decodeCommit` for commit bodies.
 */
export function decodeBatchOperations(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  decodeCommit: (bytes: Uint8Array, view: DataView, bodyStart: number) => WalOperation,
): WalOperation[] {
  const b = pos + RECORD_HEADER_BYTES;
  const count = view.getUint32(b, true);
  const ops: WalOperation[] = new Array(count);
  let p = b + COUNT_BYTES;
  for (let i = 0; i < count; i++) {
    const type = bytes[p];
    const n = view.getUint32(p + 1, true);
    const s = p + OP_HEADER_BYTES;
    if (type === RecordType.put) {
      const k = view.getUint16(s, true);
      ops[i] = {
        type: "put",
        key: bytes.slice(s + 2, s + 2 + k),
        value: bytes.slice(s + 2 + k, s + n),
      };
    } else if (type === RecordType.delete) {
      ops[i] = { type: "delete", key: bytes.slice(s, s + n) };
    } else {
      ops[i] = decodeCommit(bytes, view, s);
    }
    p = s + n;
  }
  return ops;
}

/** The end of the body of the record at `pos` (its length less its padding). */
export function recordBodyEnd(view: DataView, pos: number): number {
  return pos + view.getUint32(pos + R_LENGTH, true) - view.getUint16(pos + R_PAD, true);
}
