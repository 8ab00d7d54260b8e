// Copying a record out of a producer's SharedArrayBuffer into a batch: TypedArray.set directly
// (byte by byte when the two are aligned differently mod 8) against SharedCopier (staged).
// deno bench bench/shared_copy_bench.ts
import { SharedCopier } from "../src/shared_copy.ts";

const ring = new Uint8Array(new SharedArrayBuffer(1 << 22)).fill(0x5a);
const batch = new Uint8Array(1 << 21);
const copier = new SharedCopier();

for (const len of [168, 4136, 1 << 20]) {
  const group = `copy ${len} bytes out of shared memory, 6 bytes off alignment`;
  let i = 0;
  const at = () => (i++ * 8) & ((1 << 21) - 8);
  Deno.bench({
    name: `${len} B: TypedArray.set`,
    group,
    baseline: true,
    fn: () => batch.set(new Uint8Array(ring.buffer, at(), len), 46),
  });
  Deno.bench({
    name: `${len} B: SharedCopier.copy`,
    group,
    fn: () => copier.copy(ring, at(), len, batch, 46),
  });
}
