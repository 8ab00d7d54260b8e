/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-16 in plain TypeScript.
 *
 * @module
 */

const POLY = 0x82f63b78;

function _makeTables(): Uint32Array {
  const t = new Uint32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 16; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
}

const T = _makeTables();

// On a little-endian machine, 4-byte-aligned data is read a word at a time through a
// Uint32Array over the same buffer: a quarter of the loads and no shifts. Cached per buffer
// (the reader's and the core Worker's buffers live long).
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
let _wordsOf: ArrayBufferLike | undefined;
let _words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

function _wordView(buffer: ArrayBufferLike): Uint32Array {
  if (buffer !== _wordsOf) {
    _words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    _wordsOf = buffer;
  }
  return _words;
}

/** A native CRC32C: continues the raw state `state` over `bytes[start..end)`. */
export type Crc32cAccelerator = (
  bytes: Uint8Array,
  start: number,
  end: number,
  state: number,
) => number;

let _native: Crc32cAccelerator | undefined;
/**
 * Below this many bytes the TypeScript loop beats a native call: measured with
 * `deno bench -A bench/engine_bench.ts --filter crc32c`.
 */
const NATIVE_MIN_BYTES = 64;

/**
 * Routes CRC32C of this thread through `native` (`undefined`: TypeScript only). The io layer
 * installs ISA-L's (`src/io/checksum.ts`); the result is the same bytes either way.
 */
export function setCrc32cAccelerator(native: Crc32cAccelerator | undefined): void {
  _native = native;
}

/** Whether CRC32C runs natively on this thread. */
export function crc32cAccelerated(): boolean {
  return _native !== undefined;
}

/**
 * Continues a CRC32C over `bytes[start..end)` from a raw (not finalized) state. Start from
 * `0xffffffff` and finish with `~state >>> 0`, or use {@linkcode crc32c}.
 */
export function crc32cUpdate(
  state: number,
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): number {
  if (_native !== undefined && end - start >= NATIVE_MIN_BYTES) {
    // The native CRC reads by address: a range outside the view (past its end, or of a buffer
    // detached or shrunk since, whose view is then empty) would read memory that is not its.
    if (start < 0 || end > bytes.length) {
      throw new RangeError(`CRC32C range [${start}, ${end}) is outside ${bytes.length} bytes`);
    }
    return _native(bytes, start, end, state);
  }
  return crc32cUpdateJs(state, bytes, start, end);
}

/**
 * One slicing-by-16 step: the state after 16 bytes, given them as four little-endian words with
 * the current state already XORed into the first.
 */
function _fold16(a: number, b: number, d: number, e: number): number {
  return T[3840 + (a & 0xff)] ^ T[3584 + ((a >>> 8) & 0xff)] ^ T[3328 + ((a >>> 16) & 0xff)] ^
    T[3072 + (a >>> 24)] ^ T[2816 + (b & 0xff)] ^ T[2560 + ((b >>> 8) & 0xff)] ^
    T[2304 + ((b >>> 16) & 0xff)] ^ T[2048 + (b >>> 24)] ^ T[1792 + (d & 0xff)] ^
    T[1536 + ((d >>> 8) & 0xff)] ^ T[1280 + ((d >>> 16) & 0xff)] ^ T[1024 + (d >>> 24)] ^
    T[768 + (e & 0xff)] ^ T[512 + ((e >>> 8) & 0xff)] ^ T[256 + ((e >>> 16) & 0xff)] ^
    T[e >>> 24];
}

/** {@linkcode crc32cUpdate} in TypeScript, whatever is installed. */
export function crc32cUpdateJs(
  state: number,
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): number {
  let c = state;
  let i = start;
  const abs = bytes.byteOffset + start;
  if (
    LITTLE_ENDIAN && (abs & 3) === 0 && end - start >= 32 &&
    !(bytes.buffer as ArrayBuffer).resizable && !(bytes.buffer as SharedArrayBuffer).growable
  ) {
    const w = _wordView(bytes.buffer);
    let x = abs >>> 2;
    const x16 = (bytes.byteOffset + end - 16) >>> 2;
    // The aligned words wholly inside [start, end) (x16 rounds down: never past `end`).
    while (x <= x16) {
      const a = c ^ w[x];
      const b = w[x + 1];
      const d = w[x + 2];
      const e = w[x + 3];
      c = _fold16(a, b, d, e);
      x += 4;
    }
    i = (x << 2) - bytes.byteOffset;
  }
  // 16 bytes per step: two independent 8-byte halves halve the loop-carried dependency chain.
  const end16 = end - 16;
  while (i <= end16) {
    const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    const b = bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) | (bytes[i + 7] << 24);
    const d = bytes[i + 8] | (bytes[i + 9] << 8) | (bytes[i + 10] << 16) | (bytes[i + 11] << 24);
    const e = bytes[i + 12] | (bytes[i + 13] << 8) | (bytes[i + 14] << 16) | (bytes[i + 15] << 24);
    c = _fold16(a, b, d, e);
    i += 16;
  }
  const end8 = end - 8;
  while (i <= end8) {
    const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c = T[1792 + (a & 0xff)] ^ T[1536 + ((a >>> 8) & 0xff)] ^ T[1280 + ((a >>> 16) & 0xff)] ^
      T[1024 + (a >>> 24)] ^ T[768 + bytes[i + 4]] ^ T[512 + bytes[i + 5]] ^
      T[256 + bytes[i + 6]] ^ T[bytes[i + 7]];
    i += 8;
  }
  while (i < end) c = T[(c ^ bytes[i++]) & 0xff] ^ (c >>> 8);
  return c;
}

/** CRC32C of `bytes[start..end)`. The check value of `"123456789"` is `0xe3069283`. */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return ~crc32cUpdate(0xffffffff, bytes, start, end) >>> 0;
}
