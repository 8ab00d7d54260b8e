// SharedCopier: the bytes arrive whatever the alignment of source and destination, from shared
// and from plain memory, for copies below and above the staging threshold.
import { assertEquals } from "@std/assert";
import { SharedCopier } from "../src/shared_copy.ts";

Deno.test("SharedCopier.copy() into shared memory copies every byte at every relative alignment", () => {
  const copier = new SharedCopier();
  const src = new Uint8Array(new ArrayBuffer(20_000), 5);
  for (let i = 0; i < src.length; i++) src[i] = (i * 17 + 3) & 0xff;
  for (const length of [1, 255, 256, 4136, 9000]) {
    for (let from = 0; from < 16; from++) {
      for (let pos = 0; pos < 16; pos++) {
        const dst = new Uint8Array(new SharedArrayBuffer(length + 40), 3, length + 32).fill(0xee);
        copier.copy(src, from, length, dst, pos);
        assertEquals(dst.subarray(pos, pos + length), src.subarray(from, from + length));
        assertEquals(dst.subarray(0, pos), new Uint8Array(pos).fill(0xee));
        assertEquals(dst.subarray(pos + length), new Uint8Array(32 - pos).fill(0xee));
      }
    }
  }
});

Deno.test("SharedCopier.copy() copies every byte at every relative alignment, shared or not", () => {
  const copier = new SharedCopier();
  for (const shared of [true, false]) {
    const buffer = shared ? new SharedArrayBuffer(20_000) : new ArrayBuffer(20_000);
    const src = new Uint8Array(buffer, 3); // a view that does not start at the buffer's start
    for (let i = 0; i < src.length; i++) src[i] = (i * 31 + 7) & 0xff;
    for (const length of [1, 100, 255, 256, 4136, 9000]) {
      for (let from = 0; from < 16; from++) {
        for (let pos = 0; pos < 16; pos++) {
          const dst = new Uint8Array(length + 32).fill(0xee);
          copier.copy(src, from, length, dst, pos);
          assertEquals(dst.subarray(pos, pos + length), src.subarray(from, from + length));
          // Nothing around the destination range is touched.
          assertEquals(dst.subarray(0, pos), new Uint8Array(pos).fill(0xee));
          assertEquals(dst.subarray(pos + length), new Uint8Array(32 - pos).fill(0xee));
        }
      }
    }
  }
});
