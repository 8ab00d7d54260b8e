/**
 * Struct offsets and constants of liburing 2.3 and the Linux x86-64 ABI. One place for every
 * number the kernel and liburing agree on; `tests/ffi_layout_test.ts` checks them against what
 * `io_uring_queue_init_params` fills in.
 *
 * @module
 */

/** `struct io_uring` (liburing 2.3, x86-64). */
export const IoUring = {
  size: 216,
  sq: {
    khead: 0,
    ktail: 8,
    kringMask: 16,
    kringEntries: 24,
    kflags: 32,
    kdropped: 40,
    array: 48,
    sqes: 56,
    sqeHead: 64,
    sqeTail: 68,
    ringSz: 72,
    ringPtr: 80,
    ringMask: 88,
    ringEntries: 92,
  },
  cq: {
    khead: 104,
    ktail: 112,
    kringMask: 120,
    kringEntries: 128,
    kflags: 136,
    koverflow: 144,
    cqes: 152,
    ringSz: 160,
    ringPtr: 168,
    ringMask: 176,
    ringEntries: 180,
  },
  flags: 192,
  ringFd: 196,
  features: 200,
} as const;

/** `struct io_uring_params`. */
export const IoUringParams = {
  size: 120,
  sqEntries: 0,
  cqEntries: 4,
  flags: 8,
  features: 20,
} as const;

/** `struct io_uring_sqe` (64 bytes). */
export const Sqe = {
  size: 64,
  opcode: 0,
  flags: 1,
  ioprio: 2,
  fd: 4,
  off: 8,
  addr: 16,
  len: 24,
  rwFlags: 28,
  userData: 32,
  bufIndex: 40,
} as const;

/** `struct io_uring_cqe` (16 bytes). */
export const Cqe = { size: 16, userData: 0, res: 8, flags: 12 } as const;

/** `IORING_OP_*` opcodes used here. */
export const Op = {
  NOP: 0,
  WRITEV: 2,
  FSYNC: 3,
  FALLOCATE: 17,
  READ: 22,
  WRITE: 23,
} as const;

/** `IOSQE_IO_LINK`: the next SQE starts only after this one succeeded. */
export const IOSQE_IO_LINK = 1 << 2;
/** `IORING_FEAT_EXT_ARG` (Linux 5.11): `io_uring_enter` takes a timeout without an SQE. */
export const IORING_FEAT_EXT_ARG = 1 << 8;

/** `IORING_FSYNC_DATASYNC`: fdatasync instead of fsync. */
export const IORING_FSYNC_DATASYNC = 1;
/** `RWF_DSYNC` (a write's `rw_flags`): the write is durable, as with `O_DSYNC`, when it completes. */
export const RWF_DSYNC = 0x2;
/** `IORING_SETUP_SINGLE_ISSUER` (kernel 6.0+). */
export const IORING_SETUP_SINGLE_ISSUER = 1 << 12;

/** `open(2)` flags (x86-64). */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  TRUNC: 0o1000,
  DSYNC: 0o10000,
  DIRECT: 0o40000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  CLOEXEC: 0o2000000,
} as const;

/** `flock(2)` operations. */
export const LOCK = { EX: 2, NB: 4, UN: 8 } as const;

/** `eventfd(2)` flags. */
export const EFD_CLOEXEC = 0o2000000;
