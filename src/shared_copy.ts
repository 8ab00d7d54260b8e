/**
 * Copies into and out of a `SharedArrayBuffer` at `memcpy` speed whatever the alignment.
 *
 * V8 copies to or from shared memory with relaxed atomics (`TypedArray.prototype.set`): word by
 * word only when source and destination have the same address mod 8, byte by byte otherwise.
 * Records taken from a producer's ring into a batch are at unrelated offsets, so 7 copies in 8
 * took the byte loop: ~1.1 µs for 4 KiB, against ~0.25 µs through an equally aligned staging
 * buffer followed by a plain (non-shared) copy (`deno bench bench/shared_copy_bench.ts`); values
 * a producer copies into its ring at an odd offset the same.
 *
 * @module
 */

/** Below this many bytes the byte loop costs about what the second copy would. */
const STAGED_MIN_BYTES = 256;

/**
 * Copies `length` bytes from `src` at `offset` to `dst` at `pos`, through a staging buffer it
 * keeps (growing to the largest copy) when either side is shared memory and they are aligned
 * differently.
 *
 * @example
 * ```ts
 * import { SharedCopier } from "./shared_copy.ts";
 *
 * const ring = new Uint8Array(new SharedArrayBuffer(8192)).fill(7);
 * const batch = new Uint8Array(8192);
 * const copier = new SharedCopier();
 * copier.copy(ring, 8, 4096, batch, 46); // 46 - 8 is not a multiple of 8: staged
 * console.log(batch[46], batch[46 + 4095]); // 7 7
 * ```
 */
export class SharedCopier {
  #staging = new Uint8Array(0);

  /** Copies `src[offset, offset + length)` to `dst[pos, pos + length)`. */
  copy(src: Uint8Array, offset: number, length: number, dst: Uint8Array, pos: number): void {
    const from = src.byteOffset + offset;
    const to = dst.byteOffset + pos;
    // A view made by the constructor costs less than subarray().
    const view = new Uint8Array(src.buffer, from, length);
    const srcShared = src.buffer instanceof SharedArrayBuffer;
    if (
      length < STAGED_MIN_BYTES || ((from - to) & 7) === 0 ||
      !(srcShared || dst.buffer instanceof SharedArrayBuffer)
    ) {
      dst.set(view, pos);
      return;
    }
    // The staging copy takes the shared side's alignment, so that the copy to or from shared
    // memory is a word copy; the other one is a plain memmove.
    const a = (srcShared ? from : to) & 7;
    if (this.#staging.length < length + a) {
      this.#staging = new Uint8Array(2 ** Math.ceil(Math.log2(length + a)));
    }
    this.#staging.set(view, a);
    dst.set(new Uint8Array(this.#staging.buffer, a, length), pos);
  }
}
