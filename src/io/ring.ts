/**
 * The memory of one io_uring ring: SQEs filled and CQEs read through views mapped once over the
 * ring liburing set up, and the few liburing calls that act on the ring itself (submit, wait,
 * register an eventfd, tear down). The backend's file operations and completion handling are in
 * `uring.ts`, its only user.
 *
 * @module
 */

import { check, Errno, errnoError, errnoName } from "../../ffi/errno.ts";
import {
  IORING_FEAT_EXT_ARG,
  IORING_SETUP_SINGLE_ISSUER,
  IoUring,
  IoUringParams,
  Sqe,
} from "../../ffi/layout.ts";
import { type AlignedBuffer, allocAligned, freeAligned } from "../../ffi/libc.ts";
import { liburing } from "../../ffi/liburing.ts";
import { PerCoreWalError } from "../errors.ts";

const TWO32 = 4294967296;

function _view(ptr: bigint, length: number): ArrayBuffer {
  return Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(ptr)!, length);
}

/**
 * A liburing ring with its memory mapped into views. Fields are the raw ring state; the
 * backend below is the only user.
 */
export class Ring {
  /** The `struct io_uring` memory (and the params after it). */
  readonly mem: AlignedBuffer;
  readonly #struct: DataView;
  readonly #sqRing: Uint32Array;
  readonly #sqHead: number;
  readonly #sqTail: number;
  readonly #sqes: DataView;
  readonly #sqMask: number;
  /** Submission queue entries. */
  readonly entries: number;
  readonly #cqRing: Uint32Array;
  readonly #cqHead: number;
  readonly #cqTail: number;
  readonly #cqes: DataView;
  readonly #cqMask: number;
  #sqeTail: number;
  #closed = false;
  /** The kernel's `IORING_FEAT_*` flags. */
  readonly features: number;
  readonly #ts = new BigInt64Array(2);
  readonly #tsPointer = Deno.UnsafePointer.of(this.#ts);
  readonly #cqePointer = new Uint8Array(8);

  private constructor(mem: AlignedBuffer, entries: number) {
    this.mem = mem;
    const s = new DataView(mem.bytes.buffer, 0, IoUring.size);
    this.#struct = s;
    const ptr = (off: number) => s.getBigUint64(off, true);
    this.entries = s.getUint32(IoUring.sq.ringEntries, true);
    this.features = s.getUint32(IoUring.features, true);
    if (this.entries !== entries) {
      throw new PerCoreWalError(
        "Unsupported",
        `io_uring ring has ${this.entries} entries, asked for ${entries}: liburing layout mismatch`,
      );
    }
    this.#sqMask = s.getUint32(IoUring.sq.ringMask, true);
    const sqRingPtr = ptr(IoUring.sq.ringPtr);
    this.#sqRing = new Uint32Array(_view(sqRingPtr, s.getUint32(IoUring.sq.ringSz, true) & ~3));
    this.#sqHead = Number(ptr(IoUring.sq.khead) - sqRingPtr) / 4;
    this.#sqTail = Number(ptr(IoUring.sq.ktail) - sqRingPtr) / 4;
    // Map SQ slots to SQEs one to one, as liburing 2.3 does at setup (checked by a test).
    const array = Number(ptr(IoUring.sq.array) - sqRingPtr) / 4;
    for (let i = 0; i < this.entries; i++) this.#sqRing[array + i] = i;
    this.#sqes = new DataView(_view(ptr(IoUring.sq.sqes), this.entries * Sqe.size));
    this.#sqeTail = s.getUint32(IoUring.sq.sqeTail, true);
    const cqRingPtr = ptr(IoUring.cq.ringPtr);
    const cqRingSz = s.getUint32(IoUring.cq.ringSz, true);
    this.#cqRing = new Uint32Array(_view(cqRingPtr, cqRingSz & ~3));
    this.#cqHead = Number(ptr(IoUring.cq.khead) - cqRingPtr) / 4;
    this.#cqTail = Number(ptr(IoUring.cq.ktail) - cqRingPtr) / 4;
    this.#cqMask = s.getUint32(IoUring.cq.ringMask, true);
    const cqesOff = Number(ptr(IoUring.cq.cqes) - cqRingPtr);
    this.#cqes = new DataView(this.#cqRing.buffer, cqesOff, cqRingSz - cqesOff);
  }

  /**
   * Creates a ring. Throws `PerCoreWalError` "Unsupported" when io_uring is refused, saying why
   * and what to do.
   */
  static create(entries: number): Ring {
    const lib = liburing();
    const mem = allocAligned(IoUring.size + IoUringParams.size + 8, 64);
    const ring = Deno.UnsafePointer.create(mem.address)!;
    const params = Deno.UnsafePointer.create(mem.address + BigInt(IoUring.size))!;
    const pview = new DataView(mem.bytes.buffer, IoUring.size, IoUringParams.size);
    pview.setUint32(IoUringParams.flags, IORING_SETUP_SINGLE_ISSUER, true);
    let rc = lib.io_uring_queue_init_params(entries, ring, params);
    if (rc === -Errno.EINVAL) {
      // Kernels before 6.0 refuse SINGLE_ISSUER: the ring is used by one thread regardless.
      mem.bytes.fill(0);
      rc = lib.io_uring_queue_init_params(entries, ring, params);
    }
    if (rc < 0) {
      freeAligned(mem);
      throw setupError(-rc);
    }
    try {
      return new Ring(mem, entries);
    } catch (e) {
      lib.io_uring_queue_exit(ring);
      freeAligned(mem);
      throw e;
    }
  }

  /** The ring's `struct io_uring` pointer. */
  get pointer(): Deno.PointerObject {
    return Deno.UnsafePointer.create(this.mem.address)!;
  }

  /** Reads a field of `struct io_uring` (for the layout test). */
  structU32(offset: number): number {
    return this.#struct.getUint32(offset, true);
  }

  /** Free submission slots. */
  get sqSpace(): number {
    return this.entries - ((this.#sqeTail - Atomics.load(this.#sqRing, this.#sqHead)) >>> 0);
  }

  /**
   * Fills the next SQE. The caller checked {@linkcode sqSpace}. `addr` is a buffer address.
   */
  prep(
    opcode: number,
    flags: number,
    fd: number,
    offset: number,
    addr: bigint,
    len: number,
    rwFlags: number,
    userData: number,
  ): void {
    const v = this.#sqes;
    const p = (this.#sqeTail & this.#sqMask) * Sqe.size;
    for (let i = 0; i < Sqe.size; i += 8) v.setBigUint64(p + i, 0n);
    v.setUint8(p + Sqe.opcode, opcode);
    v.setUint8(p + Sqe.flags, flags);
    v.setInt32(p + Sqe.fd, fd, true);
    v.setUint32(p + Sqe.off, offset % TWO32, true);
    v.setUint32(p + Sqe.off + 4, Math.floor(offset / TWO32), true);
    v.setBigUint64(p + Sqe.addr, addr, true);
    v.setUint32(p + Sqe.len, len, true);
    v.setUint32(p + Sqe.rwFlags, rwFlags, true);
    v.setUint32(p + Sqe.userData, userData, true);
    this.#sqeTail = (this.#sqeTail + 1) >>> 0;
  }

  /** Submits the filled SQEs (liburing publishes `sqe_tail` to the kernel). */
  submit(): number {
    this.#struct.setUint32(IoUring.sq.sqeTail, this.#sqeTail, true);
    let rc: number;
    do rc = liburing().io_uring_submit(this.pointer); while (rc === -Errno.EINTR);
    return rc;
  }

  /** Whether a completion is waiting to be reaped (reads the CQ ring, no system call). */
  get cqReady(): boolean {
    return Atomics.load(this.#cqRing, this.#cqTail) !== this.#cqRing[this.#cqHead];
  }

  /** Calls `onCqe(userData, res)` for every completion available now; returns how many. */
  reap(onCqe: (userData: number, res: number) => void): number {
    const head = this.#cqRing[this.#cqHead];
    const tail = Atomics.load(this.#cqRing, this.#cqTail);
    let h = head;
    const v = this.#cqes;
    while (h !== tail) {
      const p = (h & this.#cqMask) * 16;
      const userData = v.getUint32(p, true);
      const res = v.getInt32(p + 8, true);
      h = (h + 1) >>> 0;
      // Release the slot before the callback, which may submit and reap again.
      Atomics.store(this.#cqRing, this.#cqHead, h);
      onCqe(userData, res);
    }
    return (h - head) >>> 0;
  }

  /** Blocks until at least one completion is available (submitting what is queued). */
  waitBlocking(): void {
    this.#struct.setUint32(IoUring.sq.sqeTail, this.#sqeTail, true);
    let rc: number;
    do rc = liburing().io_uring_submit_and_wait(this.pointer, 1); while (rc === -Errno.EINTR);
    if (rc < 0) throw errnoError(-rc, "io_uring_submit_and_wait");
  }

  /**
   * Whether {@linkcode wait} can be used: before Linux 5.11 (no `IORING_FEAT_EXT_ARG`) liburing
   * would take an SQE for the timeout behind this class's back.
   */
  get canWait(): boolean {
    return (this.features & IORING_FEAT_EXT_ARG) !== 0;
  }

  /**
   * Blocks until a completion is available or `timeoutMs` passes (submits nothing); false if
   * it timed out. Only where {@linkcode canWait}.
   */
  wait(timeoutMs: number): boolean {
    const ns = Math.max(0, Math.round(timeoutMs * 1e6));
    this.#ts[0] = BigInt(Math.floor(ns / 1e9));
    this.#ts[1] = BigInt(ns % 1e9);
    let rc: number;
    do {
      rc = liburing().io_uring_wait_cqes(this.pointer, this.#cqePointer, 1, this.#tsPointer, null);
    } while (rc === -Errno.EINTR);
    if (rc === -Errno.ETIME) return false;
    if (rc < 0) throw errnoError(-rc, "io_uring_wait_cqes");
    return true;
  }

  /** Has the kernel post to `fd` for every completion. */
  registerEventfd(fd: number): void {
    check(liburing().io_uring_register_eventfd(this.pointer, fd), "io_uring_register_eventfd");
  }

  /** Tears the ring down. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    liburing().io_uring_queue_exit(this.pointer);
    freeAligned(this.mem);
  }
}

/** The error for a refused `io_uring_setup`, with what to do. */
export function setupError(errno: number): PerCoreWalError {
  const name = errnoName(errno);
  const why: Record<string, string> = {
    EPERM: "io_uring is disabled (sysctl kernel.io_uring_disabled) or blocked by a seccomp " +
      'profile (Docker\'s default since 25): allow io_uring_setup, or use backend "sync"',
    ENOSYS: "the kernel has no io_uring (Linux 5.6+ needed), or a sandbox hides it: use " +
      'backend "sync"',
    ENOMEM: "not enough locked memory for the ring (raise `ulimit -l`, or lower ringEntries)",
    EINVAL: "the kernel refused the ring parameters (ringEntries too large?)",
  };
  return new PerCoreWalError(
    "Unsupported",
    `Cannot create an io_uring ring: io_uring_setup failed with ${name}: ${
      why[name] ?? "see errno"
    }`,
    { errno: name, operation: "io_uring_setup" },
  );
}
