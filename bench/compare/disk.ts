// Bytes on disk of a contestant's directory: what its files hold allocated (st_blocks), not their
// length, so that a preallocated or zero-filled segment counts for what it takes.

/** Allocated bytes (st_blocks × 512) of every file under `dir`, recursively. */
export function diskBytes(dir: string): number {
  let sum = 0;
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) sum += diskBytes(path);
    else if (e.isFile) sum += (Deno.statSync(path).blocks ?? 0) * 512;
  }
  return sum;
}
