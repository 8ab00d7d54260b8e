/**
 * All-zero checks over a byte buffer and a `Uint32Array` view of the same memory. A prepared
 * segment is zeros until written, so "is this range zero" is asked per block by the reader's
 * damage classification and by the unstarted-segment probe: the word loops keep it fast.
 *
 * @module
 */

/** The index of the first non-zero word of `words[from..to)`, or `to`. */
export function firstNonZeroWord(words: Uint32Array, from: number, to: number): number {
  let x = from;
  for (; x + 8 <= to; x += 8) {
    if (
      (words[x] | words[x + 1] | words[x + 2] | words[x + 3] | words[x + 4] | words[x + 5] |
        words[x + 6] | words[x + 7]) !== 0
    ) {
      break;
    }
  }
  while (x < to && words[x] === 0) x++;
  return x;
}

/** Whether `b[from..to)` is all zeros; `words` views the same buffer from offset 0. */
export function zeroRange(b: Uint8Array, words: Uint32Array, from: number, to: number): boolean {
  let i = from;
  while (i < to && (i & 3) !== 0) if (b[i++] !== 0) return false;
  let x = i >> 2;
  const xEnd = to >> 2;
  let acc = 0;
  // OR of 8 words per step: one branch per 32 bytes.
  for (; x + 8 <= xEnd; x += 8) {
    acc = words[x] | words[x + 1] | words[x + 2] | words[x + 3] | words[x + 4] |
      words[x + 5] | words[x + 6] | words[x + 7];
    if (acc !== 0) return false;
  }
  for (; x < xEnd; x++) if (words[x] !== 0) return false;
  for (i = Math.max(i, xEnd << 2); i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/** Whether every byte of `b` is zero (short buffers; no word view needed). */
export function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
