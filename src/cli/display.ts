/**
 * How the `wal` tool shows things: bytes as UTF-8 or hex, entries as text lines or JSON lines
 * (sequences as numbers, the bigint timestamps as strings), sizes and times.
 *
 * @module
 */

import type { PerCoreWalEntry } from "../types.ts";

const _utf8 = new TextDecoder("utf-8", { fatal: true });
const _ascii = new TextDecoder("utf-8");

/**
 * Bytes as text: their UTF-8 when they are valid UTF-8 without control characters and do not
 * begin with `0x`, else `0x` and their hex (so the two never look alike).
 *
 * @example
 * ```ts
 * import { bytesText } from "./display.ts";
 *
 * console.log(bytesText(new TextEncoder().encode("user:1"))); // "user:1"
 * console.log(bytesText(new Uint8Array([0xff, 0x00]))); // "0xff00"
 * ```
 */
export function bytesText(bytes: Uint8Array): string {
  // Control characters (a zero byte included) and a leading "0x" mean hex, without decoding.
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b < 0x20 || b === 0x7f) return _hex(bytes);
    if (b >= 0x80) ascii = false;
  }
  if (bytes.length >= 2 && bytes[0] === 0x30 && bytes[1] === 0x78) return _hex(bytes);
  if (ascii) return _ascii.decode(bytes);
  try {
    return _utf8.decode(bytes);
  } catch (e) {
    // Not UTF-8 (the fatal decoder's TypeError): shown as hex.
    if (!(e instanceof TypeError)) throw e;
    return _hex(bytes);
  }
}

const _HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function _hex(bytes: Uint8Array): string {
  let s = "0x";
  for (let i = 0; i < bytes.length; i++) s += _HEX[bytes[i]];
  return s;
}

/**
 * One JSON line: bigints (timestamps in nanoseconds) as decimal strings, `Uint8Array`s through {@linkcode bytesText}.
 *
 * @example
 * ```ts
 * import { jsonLine } from "./display.ts";
 *
 * console.log(jsonLine({ sequence: 12, timestampNs: 5n })); // {"sequence":12,"timestampNs":"5"}
 * ```
 */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return bytesText(v);
    if (v instanceof Map) return Object.fromEntries(v);
    return v;
  });
}

/**
 * An entry as one JSON line: core, sequence, epoch, timestampNs, type and the operation's fields
 * (numbers as numbers, the bigint `timestampNs` as a string, bytes through {@linkcode bytesText}).
 *
 * @example
 * ```ts
 * import { entryJson } from "./display.ts";
 *
 * console.log(entryJson({
 *   coreId: 0, epoch: 1, sequence: 7, timestampNs: 0n,
 *   operation: { type: "delete", key: new TextEncoder().encode("k") },
 * })); // {"core":0,"sequence":7,"epoch":1,"timestampNs":"0","type":"delete","key":"k"}
 * ```
 */
export function entryJson(e: PerCoreWalEntry): string {
  const o: Record<string, unknown> = {
    core: e.coreId,
    sequence: e.sequence,
    epoch: e.epoch,
    timestampNs: String(e.timestampNs),
    type: e.operation.type,
  };
  const op = e.operation;
  switch (op.type) {
    case "put":
      o.key = bytesText(op.key);
      o.value = bytesText(op.value);
      break;
    case "delete":
      o.key = bytesText(op.key);
      break;
    case "checkpoint":
      o.id = op.id;
      break;
    case "commit": {
      o.offsets = Object.fromEntries(op.offsets);
      if (op.watermark !== undefined) o.watermark = op.watermark;
      break;
    }
    case "epochBarrier":
      o.closesEpoch = op.epoch;
      break;
  }
  return JSON.stringify(o);
}

/**
 * An entry as one line of text: `core seq epoch time type fields`; strings are quoted, hex is
 * not.
 *
 * @example
 * ```ts
 * import { entryText } from "./display.ts";
 *
 * console.log(entryText({
 *   coreId: 1, epoch: 2, sequence: 3, timestampNs: 0n,
 *   operation: { type: "checkpoint", id: 9 },
 * })); // core 1 seq 3 epoch 2 1970-01-01T00:00:00.000Z checkpoint id=9
 * ```
 */
export function entryText(e: PerCoreWalEntry): string {
  const head = `core ${e.coreId} seq ${e.sequence} epoch ${e.epoch} ${timeText(e.timestampNs)}`;
  const op = e.operation;
  switch (op.type) {
    case "put":
      return `${head} put key=${_quoted(op.key)} value=${_quoted(op.value)}`;
    case "delete":
      return `${head} delete key=${_quoted(op.key)}`;
    case "checkpoint":
      return `${head} checkpoint id=${op.id}`;
    case "commit": {
      const offsets = [...op.offsets].map(([k, v]) => `${JSON.stringify(k)}=${v}`).join(",");
      const wm = op.watermark === undefined ? "" : ` watermark=${op.watermark}`;
      return `${head} commit offsets={${offsets}}${wm}`;
    }
    case "epochBarrier":
      return `${head} epochBarrier closes=${op.epoch}`;
  }
}

function _quoted(b: Uint8Array): string {
  const t = bytesText(b);
  return t.startsWith("0x") ? t : JSON.stringify(t);
}

/**
 * Nanoseconds since the Unix epoch as an ISO time (to the millisecond).
 *
 * @example
 * ```ts
 * import { timeText } from "./display.ts";
 *
 * console.log(timeText(1_000_000_000n)); // 1970-01-01T00:00:01.000Z
 * ```
 */
export function timeText(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ns}ns`;
}

/**
 * A byte count for people: `812 B`, `31.5 KiB`, `64.0 MiB`.
 *
 * @example
 * ```ts
 * import { sizeText } from "./display.ts";
 *
 * console.log(sizeText(32768)); // 32.0 KiB
 * ```
 */
export function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
