/**
 * Operations on their way in: what `append(op)` accepts, validated into the stored form, and
 * the bytes of each record body. Pure: no I/O. `docs/FORMAT.md` ("Record bodies") describes
 * every byte.
 *
 * @module
 */

import { MAX_EPOCH, MAX_KEY_BYTES, setU64 } from "./format_layout.ts";
import { describeValue, safeInteger, setSafeI64, signedSafeInteger } from "./numbers.ts";
import type { Bytes, CommitOffsets, WalOperation, WalOperationInput } from "./types.ts";

const encoder = new TextEncoder();

/** Converts `Bytes` to a `Uint8Array`, or throws `TypeError` naming the argument. */
export function toBytes(x: Bytes, what: string): Uint8Array {
  if (x instanceof Uint8Array) {
    // Read once, here, before a sequence is claimed: plain bytes of a fixed length. A Proxy
    // passes `instanceof` but is no view (its bytes could throw while copied); a subclass may
    // override `length` (and change it between reads): copy its view as a plain Uint8Array.
    if (!ArrayBuffer.isView(x)) {
      throw new TypeError(`${what} must be a Uint8Array or a string, got a Proxy or a forgery`);
    }
    // (On the hot path: `constructor` is one load; `getPrototypeOf` and `hasOwn` cost about
    // 10 ns each per call. A plain Uint8Array given a `length` of its own is not detected.)
    const plain = x.constructor === Uint8Array ? x : _plainView(x);
    if (plain.length === 0 && _isDetached(plain)) {
      throw new TypeError(`${what} is a Uint8Array over a detached ArrayBuffer`);
    }
    return plain;
  }
  if (typeof x === "string") {
    // A lone surrogate would be written as U+FFFD: two different strings, one key.
    if (!x.isWellFormed()) {
      throw new TypeError(`${what} is not a well-formed string (lone surrogate)`);
    }
    return encoder.encode(x);
  }
  throw new TypeError(`${what} must be a Uint8Array or a string, got ${describeValue(x)}`);
}

const _typedArray = Object.getPrototypeOf(Uint8Array.prototype);
const _bufferOf = Object.getOwnPropertyDescriptor(_typedArray, "buffer")!.get!;
const _offsetOf = Object.getOwnPropertyDescriptor(_typedArray, "byteOffset")!.get!;
const _lengthOf = Object.getOwnPropertyDescriptor(_typedArray, "byteLength")!.get!;

/** The bytes a Uint8Array (of any subclass) views, through the built-in getters only. */
function _plainView(x: Uint8Array): Uint8Array {
  return new Uint8Array(_bufferOf.call(x), _offsetOf.call(x), _lengthOf.call(x));
}

function _isDetached(x: Uint8Array): boolean {
  const buffer = _bufferOf.call(x) as ArrayBuffer | SharedArrayBuffer;
  return buffer instanceof ArrayBuffer && buffer.detached;
}

/** Validates a key's type and size. */
export function toKey(key: Bytes): Uint8Array {
  const k = toBytes(key, "key");
  if (k.length > MAX_KEY_BYTES) {
    throw new RangeError(`key is ${k.length} bytes; keys are at most ${MAX_KEY_BYTES} bytes`);
  }
  return k;
}

/** Validates commit offsets and returns them as a Map. */
export function toOffsets(offsets: CommitOffsets): Map<string, number> {
  if (offsets === null || typeof offsets !== "object") {
    throw new TypeError(`offsets must be a Map or an object, got ${describeValue(offsets)}`);
  }
  const entries = offsets instanceof Map ? offsets.entries() : Object.entries(offsets);
  const out = new Map<string, number>();
  for (const [name, off] of entries) {
    if (typeof name !== "string") throw new TypeError("offset source names must be strings");
    if (encoder.encode(name).length > MAX_KEY_BYTES) {
      throw new RangeError(`source name "${name.slice(0, 40)}..." is longer than 65535 bytes`);
    }
    out.set(name, safeInteger(off, `offset of source "${name}"`));
  }
  if (out.size > 0xffff) throw new RangeError("a commit holds at most 65535 sources");
  return out;
}

/** Validates an operation as `append(op)` accepts it and returns its stored form. */
export function normalizeOperation(op: WalOperationInput, currentEpoch: number): WalOperation {
  if (op === null || typeof op !== "object") {
    throw new TypeError(`operation must be an object, got ${describeValue(op)}`);
  }
  switch (op.type) {
    case "put":
      return { type: "put", key: toKey(op.key), value: toBytes(op.value, "value") };
    case "delete":
      return { type: "delete", key: toKey(op.key) };
    case "checkpoint":
      return { type: "checkpoint", id: safeInteger(op.id, "checkpoint id") };
    case "commit": {
      const c: WalOperation = { type: "commit", offsets: toOffsets(op.offsets) };
      if (op.watermark !== undefined) c.watermark = signedSafeInteger(op.watermark, "watermark");
      return c;
    }
    case "epochBarrier": {
      const epoch = op.epoch === undefined ? currentEpoch : safeInteger(op.epoch, "barrier epoch");
      // A checkpoint begins the next epoch with a barrier of its own, so an application's
      // barrier leaves room for it.
      if (epoch > currentEpoch && epoch === MAX_EPOCH) {
        throw new RangeError(
          `barrier epoch ${epoch} is above 2^53 - 2: a checkpoint could not begin the next epoch`,
        );
      }
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
      setU64(view, pos, op.id);
      return;
    case "epochBarrier":
      setU64(view, pos, op.epoch);
      return;
    case "commit": {
      view.setUint16(pos, op.offsets.size, true);
      let p = pos + 2;
      for (const [name, off] of op.offsets) {
        const nb = encoder.encode(name);
        view.setUint16(p, nb.length, true);
        bytes.set(nb, p + 2);
        setU64(view, p + 2 + nb.length, off);
        p += 2 + nb.length + 8;
      }
      if (op.watermark === undefined) {
        bytes[p] = 0;
      } else {
        bytes[p] = 1;
        setSafeI64(view, p + 1, op.watermark);
      }
      return;
    }
  }
}
