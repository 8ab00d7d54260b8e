/**
 * Where a shared library is looked for: its name (the dynamic linker's search) first, then the
 * usual library directories of Debian/Ubuntu (x86-64, arm64) and other distributions.
 *
 * @module
 */

/** The places `soname` is tried, in order. */
export function librarySearchPath(soname: string): string[] {
  return [
    soname,
    `/usr/lib/x86_64-linux-gnu/${soname}`,
    `/usr/lib/aarch64-linux-gnu/${soname}`,
    `/usr/lib64/${soname}`,
    `/usr/lib/${soname}`,
  ];
}
