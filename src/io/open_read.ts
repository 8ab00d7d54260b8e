/**
 * The libc side of opening a file for reading that cannot block or follow a link, whatever is
 * swapped in at its path: `open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)`.
 * `src/fs.ts` checks what the descriptor names (through `/proc/self/fd/<fd>`, which names the
 * opened inode, not the path) and opens that with Deno. Used only where FFI is granted.
 *
 * @module
 */

import { errnoError } from "../../ffi/errno.ts";
import { cString, lastErrno, libc } from "../../ffi/libc.ts";
import { O } from "../../ffi/layout.ts";

/** `O_NONBLOCK` and `O_NOCTTY` (x86-64): opening a FIFO or a terminal returns at once. */
const _O_NONBLOCK = 0o4000;
const _O_NOCTTY = 0o400;

let _usable: boolean | undefined;

/**
 * Whether this thread can open files through libc and name them by `/proc/self/fd/<fd>` (FFI
 * and read access to `/proc/self/fd` granted, `/proc` mounted). Decided once per thread.
 */
export function canOpenWithoutBlocking(): boolean {
  if (_usable !== undefined) return _usable;
  _usable = false;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return false;
    const proc = Deno.permissions.querySync({ name: "read", path: "/proc/self/fd" });
    if (proc.state !== "granted" || !Deno.statSync("/proc/self/fd").isDirectory) return false;
    libc();
    _usable = true;
  } catch {
    // No libc, no /proc: the caller keeps its lstat check.
  }
  return _usable;
}

/**
 * Opens `path` read-only without blocking (a FIFO, a device) and without following a final
 * symbolic link: the descriptor (close it with {@linkcode closeDescriptor}), or throws
 * `PerCoreWalError` "Io" with the errno name (`ELOOP` for a symbolic link).
 */
export function openReadNonBlocking(path: string): number {
  const flags = O.RDONLY | _O_NONBLOCK | O.NOFOLLOW | _O_NOCTTY | O.CLOEXEC;
  const fd = libc().open(cString(path), flags, 0);
  if (fd < 0) throw errnoError(-lastErrno(), "open", { path });
  return fd;
}

/** Closes a descriptor from {@linkcode openReadNonBlocking}. */
export function closeDescriptor(fd: number): void {
  libc().close(fd);
}
