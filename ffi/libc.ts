/**
 * The libc calls Deno's API lacks: open with O_DIRECT/O_DSYNC, fallocate, fdatasync, flock,
 * aligned memory, eventfd.
 *
 * @module
 */

import { PerCoreWalError } from "../src/errors.ts";

const symbols = {
  // int open(const char *path, int flags, mode_t mode)
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int close(int fd)
  close: { parameters: ["i32"], result: "i32" },
  // int fallocate(int fd, int mode, off_t offset, off_t len)
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
  // int ftruncate(int fd, off_t length)
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // int fsync(int fd)
  fsync: { parameters: ["i32"], result: "i32" },
  // int fdatasync(int fd)
  fdatasync: { parameters: ["i32"], result: "i32" },
  // ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
  pwrite: { parameters: ["i32", "pointer", "usize", "i64"], result: "isize" },
  // ssize_t pread(int fd, void *buf, size_t count, off_t offset)
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // int posix_memalign(void **memptr, size_t alignment, size_t size)
  posix_memalign: { parameters: ["buffer", "usize", "usize"], result: "i32" },
  // void free(void *ptr)
  free: { parameters: ["pointer"], result: "void" },
  // int eventfd(unsigned int initval, int flags)
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count), on a worker thread: only for eventfds
  read_blocking: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  // ssize_t write(int fd, const void *buf, size_t count)
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int flock(int fd, int operation)
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // int sched_setaffinity(pid_t pid, size_t cpusetsize, const cpu_set_t *mask)
  sched_setaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  // int *__errno_location(void)
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libc symbols. */
export type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

let lib: Libc | undefined;

/** Loads libc on first use. */
export function libc(): Libc {
  if (lib !== undefined) return lib;
  try {
    lib = Deno.dlopen("libc.so.6", symbols).symbols;
  } catch (e) {
    throw new PerCoreWalError(
      "Unsupported",
      `Cannot load libc.so.6 through FFI (${e instanceof Error ? e.message : e}); ` +
        `run Deno with --allow-ffi on Linux with glibc`,
      { cause: e },
    );
  }
  return lib;
}

/** `-errno` of the last failed libc call on this thread. */
export function lastErrno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : -new Deno.UnsafePointerView(p).getInt32();
}

/** A NUL-terminated C string. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** Memory from `posix_memalign`, viewed as a Uint8Array; free it with {@linkcode freeAligned}. */
export interface AlignedBuffer {
  /** The view over the memory. */
  bytes: Uint8Array<ArrayBuffer>;
  /** The address, for SQEs. */
  address: bigint;
  /** The pointer, for `free`. */
  pointer: Deno.PointerObject;
}

/** Allocates `size` zeroed bytes aligned to `alignment`. */
export function allocAligned(size: number, alignment = 4096): AlignedBuffer {
  const out = new BigUint64Array(1);
  const rc = libc().posix_memalign(new Uint8Array(out.buffer), BigInt(alignment), BigInt(size));
  if (rc !== 0) {
    throw new PerCoreWalError("Io", `posix_memalign(${size}) failed: errno ${rc}`, {
      operation: "posix_memalign",
    });
  }
  const pointer = Deno.UnsafePointer.create(out[0])!;
  const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, size));
  bytes.fill(0);
  return { bytes, address: out[0], pointer };
}

/** Frees memory from {@linkcode allocAligned}. */
export function freeAligned(buf: AlignedBuffer): void {
  libc().free(buf.pointer);
}
