/**
 * The bell of a core Worker that sleeps in the kernel: an eventfd with a read in flight on the
 * Worker's io_uring ring, which any producer thread writes to wake it (one system call).
 *
 * @module
 */

import { errnoError } from "../../ffi/errno.ts";
import { EFD_CLOEXEC } from "../../ffi/layout.ts";
import { lastErrno, libc } from "../../ffi/libc.ts";
import { PerCoreWalError } from "../errors.ts";

/**
 * Creates a bell (an eventfd); throws `PerCoreWalError` "Io" if the kernel refuses.
 *
 * @example
 * ```ts ignore
 * const bell = createBell();
 * ringBell(bell); // from any thread with FFI
 * closeBell(bell);
 * ```
 */
export function createBell(): number {
  const fd = libc().eventfd(0, EFD_CLOEXEC);
  if (fd < 0) throw errnoError(-lastErrno(), "eventfd");
  return fd;
}

let _writer: ((fd: number) => boolean) | null | undefined;

/**
 * Adds one to bell `fd`; false if this thread cannot (FFI not granted here, or libc not
 * loadable). Never prompts for the permission.
 *
 * @example
 * ```ts ignore
 * if (!ringBell(bell)) console.log("this thread cannot ring: wake the Worker another way");
 * ```
 */
export function ringBell(fd: number): boolean {
  if (_writer === undefined) {
    _writer = null;
    if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") {
      try {
        const write = libc().write;
        const one = new Uint8Array(8);
        one[0] = 1;
        _writer = (fd) => Number(write(fd, one, 8n)) === 8;
      } catch (e) {
        // libc cannot be loaded here (libc() says so with "Unsupported"): this thread cannot ring.
        if (!(e instanceof PerCoreWalError)) throw e;
      }
    }
  }
  return _writer !== null && _writer(fd);
}

/**
 * Closes bell `fd` (once no thread can still write to it: the number could then name another
 * file).
 *
 * @example
 * ```ts ignore
 * closeBell(bell);
 * ```
 */
export function closeBell(fd: number): void {
  if (libc().close(fd) < 0) throw errnoError(-lastErrno(), "close", { path: "bell eventfd" });
}
