// What the power-loss simulator with Workers writes: each record's value follows from its key
// (`${stream}-${n}`), so a record read back is checked without a copy of what was appended.

/** Slots of a producer Worker's progress (Int32, shared). */
export const Progress = { APPENDED: 0, ACKED: 1, STOP: 2 } as const;

/** The value of record `n` of stream `name`: 0 to about 1,500 bytes, from a hash of the key. */
export function powerLossValue(name: string, n: number): Uint8Array {
  let h = 2166136261;
  for (const c of `${name}-${n}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  const length = (h % 1531) * ((h >>> 11) & 1);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 61) out[i] = 1 + ((h >>> (i % 24)) & 0xfe);
  return out;
}
