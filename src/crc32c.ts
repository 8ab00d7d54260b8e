/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8 in plain TypeScript.
 *
 * @module
 */

const POLY = 0x82f63b78;

function _makeTables(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
}

const T = _makeTables();

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
  let c = state;
  let i = start;
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
