/**
 * Intel ISA-L (`libisal.so.2`, Debian package `libisal2`) through `Deno.dlopen`: its CRC32C
 * uses the CPU's CRC instructions (SSE 4.2 on x86-64, the CRC extension on arm64). Optional:
 * without it the module computes CRC32C in TypeScript.
 *
 * @module
 */

import { librarySearchPath } from "./paths.ts";

const symbols = {
  // unsigned int crc32_iscsi(unsigned char *buffer, int len, unsigned int init_crc)
  // Returns the raw (not inverted) CRC32C state, continuing from init_crc. The buffer is passed
  // as its address (a bigint from Deno.UnsafePointer): no view is made per call, and V8 calls it
  // through its fast path.
  crc32_iscsi: { parameters: ["usize", "i32", "u32"], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded ISA-L symbols. */
export type Isal = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** Where ISA-L is looked for, in order, unless `DENO_ISAL_PATH` names a file. */
const CANDIDATES = librarySearchPath("libisal.so.2");

let lib: Isal | null | undefined;

/**
 * Loads ISA-L on first use; `undefined` when it is absent or FFI is not granted. Never prompts:
 * the permission is queried first, and a missing library is not an error.
 */
export function isal(): Isal | undefined {
  if (lib !== undefined) return lib ?? undefined;
  lib = null;
  if (Deno.build.os !== "linux") return undefined;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
  let override: string | undefined;
  if (Deno.permissions.querySync({ name: "env", variable: "DENO_ISAL_PATH" }).state === "granted") {
    override = Deno.env.get("DENO_ISAL_PATH");
  }
  for (const path of override ? [override] : CANDIDATES) {
    try {
      lib = Deno.dlopen(path, symbols).symbols;
      return lib;
    } catch {
      // Not there: try the next place.
    }
  }
  return undefined;
}
