/**
 * Native CRC32C for the threads that compute many: ISA-L when it is installed and FFI is
 * granted, TypeScript otherwise (same results; `tests/crc32c_test.ts` compares them).
 *
 * @module
 */

import { isal } from "../../ffi/isal.ts";
import { setCrc32cAccelerator } from "../crc32c.ts";

let _tried = false;
let _name: "isa-l" | "typescript" = "typescript";

/**
 * Installs ISA-L's CRC32C on this thread if it can be loaded (idempotent, cheap after the first
 * call); returns which implementation computes CRC32C here.
 */
export function enableNativeCrc32c(): "isa-l" | "typescript" {
  if (_tried) return _name;
  _tried = true;
  const lib = isal();
  if (lib !== undefined) {
    const f = lib.crc32_iscsi;
    // ISA-L reads the view's bytes and keeps nothing: no buffer outlives the call.
    setCrc32cAccelerator((bytes, state) => f(bytes, bytes.length, state >>> 0) | 0);
    _name = "isa-l";
  }
  return _name;
}
