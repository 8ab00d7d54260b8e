/**
 * Native CRC32C for the threads that compute many: ISA-L when it is installed and FFI is
 * granted, TypeScript otherwise (same results; `tests/crc32c_test.ts` compares them).
 *
 * @module
 */

import { isal } from "../../ffi/isal.ts";
import { assert } from "../assert.ts";
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
    const at = lib.crc32_iscsi;
    // Each buffer's address is looked up once (an ArrayBuffer's bytes never move): the engine's
    // batches and the reader's windows are long lived, and a merge reads several windows in turn.
    // The map holds no buffer alive; the last one seen is held, and checked first.
    const bases = new WeakMap<ArrayBufferLike, bigint>();
    let last: ArrayBufferLike | undefined;
    let lastBase = 0n;
    setCrc32cAccelerator((bytes, start, end, state) => {
      const buffer = bytes.buffer;
      if (buffer !== last) {
        let base = bases.get(buffer);
        if (base === undefined) {
          // crc32cUpdate asks for at least 64 bytes inside the view: the buffer is not empty,
          // so it has an address.
          const p = Deno.UnsafePointer.of(new Uint8Array(buffer));
          assert(p !== null, "a non-empty buffer has an address");
          base = BigInt(Deno.UnsafePointer.value(p));
          bases.set(buffer, base);
        }
        last = buffer;
        lastBase = base;
      }
      // ISA-L reads the bytes and keeps nothing.
      return at(lastBase + BigInt(bytes.byteOffset + start), end - start, state >>> 0) | 0;
    });
    _name = "isa-l";
  }
  return _name;
}
