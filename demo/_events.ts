/**
 * The demo's events: 16-byte keys and 112-byte values derived from them, so recovery can
 * check every byte of every acknowledged event without keeping a copy.
 *
 * @module
 */

const enc = new TextEncoder();

/** The key of event `i` from producer `source` (one letter): 16 bytes, e.g. `m:00000000000042`. */
export function eventKey(source: string, i: number): Uint8Array {
  return enc.encode(`${source}:${String(i).padStart(14, "0")}`);
}

/** The value of the event with `key`: the key repeated 7 times (112 bytes). */
export function eventValue(key: Uint8Array): Uint8Array {
  const v = new Uint8Array(key.length * 7);
  for (let i = 0; i < 7; i++) v.set(key, i * key.length);
  return v;
}

/** Whether `value` is the value of `key`. */
export function isEventValue(key: Uint8Array, value: Uint8Array | undefined): boolean {
  if (value === undefined || value.length !== key.length * 7) return false;
  for (let i = 0; i < value.length; i++) if (value[i] !== key[i % key.length]) return false;
  return true;
}
