/**
 * The one rule for numbers (see the module doc of `types.ts`), as code: every entry point that
 * takes a sequence, epoch, position, id, offset, watermark, count or size checks it here, and
 * every decoder that reads a u64 from disk refuses one above 2^53 - 1 here.
 *
 * @module
 */

/** What a value is, for an error message. */
export function describeValue(x: unknown): string {
  if (x === null) return "null";
  if (typeof x === "object") return (x as object).constructor?.name ?? "object";
  return typeof x;
}

/**
 * Checks that `x` is a safe integer (a range is the caller's to check) and returns it. A
 * `bigint` (or any other non-number) is a `TypeError`; a fraction, NaN or a number beyond
 * `Number.MAX_SAFE_INTEGER` is a `RangeError`.
 */
export function safeIntegerAny(x: unknown, what: string): number {
  if (typeof x !== "number") throw _notANumber(x, what);
  if (!Number.isSafeInteger(x)) throw new RangeError(`${what} must be an integer, got ${x}`);
  return x;
}

/**
 * Checks that `x` is a non-negative safe integer and returns it. A `bigint` (or any other
 * non-number) is a `TypeError`; a fraction, a negative number, NaN or a number above
 * `Number.MAX_SAFE_INTEGER` is a `RangeError`.
 */
export function safeInteger(x: unknown, what: string): number {
  if (typeof x !== "number") throw _notANumber(x, what);
  if (!Number.isSafeInteger(x) || x < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${x}`);
  }
  return x;
}

/**
 * Checks that `x` is a safe integer, negative or not (an event-time watermark, stored as an i64)
 * and returns it. Errors as {@linkcode safeInteger}.
 */
export function signedSafeInteger(x: unknown, what: string): number {
  if (typeof x !== "number") throw _notANumber(x, what);
  if (!Number.isSafeInteger(x)) throw new RangeError(`${what} must be a safe integer, got ${x}`);
  return x;
}

function _notANumber(x: unknown, what: string): TypeError {
  return new TypeError(
    typeof x === "bigint"
      ? `${what} must be a number, got the bigint ${x}n: pass a number (Number(x))`
      : `${what} must be a number, got ${describeValue(x)}`,
  );
}

const TWO32 = 4294967296;
/** The high 32-bit word of a u64 holding a safe integer is at most this. */
export const MAX_SAFE_HIGH_WORD = 0x1fffff;

/** Whether the little-endian u64 at `pos` is at most 2^53 - 1. */
export function u64IsSafe(view: DataView, pos: number): boolean {
  return view.getUint32(pos + 4, true) <= MAX_SAFE_HIGH_WORD;
}

/** Whether the little-endian i64 at `pos` is a safe integer (|x| ≤ 2^53 - 1). */
export function i64IsSafe(view: DataView, pos: number): boolean {
  const hi = view.getInt32(pos + 4, true);
  if (hi >= 0) return hi <= MAX_SAFE_HIGH_WORD;
  // Negative: -(2^53 - 1) is high word -0x200000 with a low word of 1.
  return hi > -0x200000 || (hi === -0x200000 && view.getUint32(pos, true) >= 1);
}

/** Reads a little-endian i64 known to be safe ({@linkcode i64IsSafe}) as a number. */
export function getSafeI64(view: DataView, pos: number): number {
  return view.getInt32(pos + 4, true) * TWO32 + view.getUint32(pos, true);
}

/** Writes a safe integer, negative or not, as a little-endian i64. */
export function setSafeI64(view: DataView, pos: number, n: number): void {
  const lo = ((n % TWO32) + TWO32) % TWO32;
  view.setUint32(pos, lo, true);
  view.setInt32(pos + 4, (n - lo) / TWO32, true);
}

/**
 * Gives a result object holding Maps a `toJSON` (not enumerable, so it stays out of spreads
 * and comparisons) that writes each Map as a plain object (`JSON.stringify` then shows its
 * entries instead of `{}`) and bytes as their length (`{ byteLength }`, not one key per byte).
 */
export function withMapsAsJson<T extends object>(o: T): T {
  Object.defineProperty(o, "toJSON", {
    value: function (this: Record<string, unknown>) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(this)) {
        out[k] = v instanceof Map
          ? Object.fromEntries(v)
          : v instanceof Uint8Array
          ? { byteLength: v.byteLength }
          : v;
      }
      return out;
    },
    enumerable: false,
    configurable: true,
    writable: true,
  });
  return o;
}

/** {@linkcode safeInteger} for an optional argument: undefined passes through. */
export function optionalSafeInteger(x: unknown, what: string): number | undefined {
  return x === undefined ? undefined : safeInteger(x, what);
}
