/**
 * The io_uring backend: one ring, owned by the thread that created it. SQEs are filled and CQEs
 * read through views mapped once over the ring memory; completions are awaited through an
 * eventfd registered with the ring (the only FFI call that runs on another thread is the
 * `read` of that eventfd, which touches no ring state). When a lone write + fdatasync is in
 * flight, the owner thread first polls the CQ ring for a bounded time (`completionSpinUs`):
 * noticing the completion through the eventfd costs a blocking-pool dispatch and a cross-thread
 * wake-up, which on a fast disk is as long as the fdatasync itself.
 *
 * @module
 */

import { Errno, errnoError } from "../../ffi/errno.ts";
import {
  EFD_CLOEXEC,
  IORING_FSYNC_DATASYNC,
  IOSQE_IO_LINK,
  O,
  Op,
  RWF_DSYNC,
} from "../../ffi/layout.ts";
import {
  type AlignedBuffer,
  allocAligned,
  cString,
  freeAligned,
  lastErrno,
  libc,
} from "../../ffi/libc.ts";
import { PerCoreWalError } from "../errors.ts";
import { removePath } from "../fs.ts";
import type { IoBackend, IoFile, OpenFileOptions, WritePart, WriteSync } from "./backend.ts";
import { Ring } from "./ring.ts";

interface UringFile extends IoFile {
  fd: number;
}

/**
 * A chain of linked writes, durable as `sync` says (an fdatasync linked after them, or each write
 * with `RWF_DSYNC`), resubmitted after a short write.
 */
interface Chain {
  file: UringFile;
  parts: WritePart[];
  /** How many bytes of each part are done. */
  done: number[];
  sync: WriteSync;
  outstanding: number;
  error?: PerCoreWalError;
  resubmit: boolean;
  canceled: boolean;
  synced: boolean;
  resolve: () => void;
  reject: (e: PerCoreWalError) => void;
}

/** Options of {@linkcode UringBackend}. */
export interface UringBackendOptions {
  /** Submission queue entries. */
  ringEntries: number;
  /**
   * How long, in microseconds, to poll the completion ring on the owner thread after submitting
   * an fdatasync when it is the only operation in flight, before falling back to the eventfd.
   * 0 disables. Default {@linkcode DEFAULT_COMPLETION_SPIN_US}.
   */
  completionSpinUs?: number;
  /**
   * Ends the completion poll early when it returns true: other work (a producer's appends)
   * is waiting for this thread, which should go back to its event loop instead.
   */
  completionSpinStop?: () => boolean;
  /**
   * Arm the eventfd wait (a read on a thread-pool thread, woken by each completion) only while
   * the owner says it is idle (`setOwnerIdle(true)`); while it is busy it calls
   * `pollCompletions()` itself between pieces of work. Saves a thread wake-up per completion
   * on a busy core. Default false: the wait is always armed while anything is in flight.
   */
  lazyCompletionWait?: boolean;
}

/**
 * Default bound of the completion poll: one fast disk's write + fdatasync (fio: p50 86 µs,
 * p99 214 µs on the test machine) completes inside it.
 */
export const DEFAULT_COMPLETION_SPIN_US = 200;

/** `user_data` of the bell read (chains' ids start at 1). */
const BELL_ID = 0;

/** After a poll that timed out, this many syncs wait on the eventfd alone (slow disks). */
const SPIN_BACKOFF = 16;

/** The io_uring backend. */
export class UringBackend implements IoBackend {
  /** This is the io_uring backend. */
  readonly kind = "io_uring" as const;
  readonly #ring: Ring;
  readonly #efd: number;
  readonly #efdBuf = new Uint8Array(8);
  #waiting: Promise<unknown> | undefined;
  readonly #slots = new Map<
    number,
    { chain: Chain; kind: "write" | "fsync"; part: number; len: number }
  >();
  #nextId = 1;
  readonly #backlog: Chain[] = [];
  readonly #spinMs: number;
  readonly #spinStop: (() => boolean) | undefined;
  #spinSkip = 0;
  /** Chains with SQEs in flight. */
  #chains = 0;
  /** Completions found by polling the ring (the eventfd read was not needed). */
  spinHits = 0;
  /** Polls that timed out and fell back to the eventfd. */
  spinMisses = 0;
  /** Submissions that returned -EAGAIN or -EBUSY and were retried. */
  submitRetries = 0;
  readonly #buffers = new Map<ArrayBufferLike, AlignedBuffer>();
  #closed = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  readonly #lazy: boolean;
  #ownerIdle = true;
  /** A read of the bell eventfd is in flight (see waitIdle). */
  #bellArmed = false;
  /** The bell read failed: waitIdle is unavailable from now on. */
  #bellBroken = false;
  readonly #bellBuf = new Uint8Array(8);
  /** Where the bell's read lands (the buffer does not move). */
  readonly #bellAddr: bigint;

  /** Creates the ring and its eventfd. Throws "Unsupported" if io_uring cannot be used. */
  constructor(options: UringBackendOptions) {
    this.#ring = Ring.create(options.ringEntries);
    this.#bellAddr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#bellBuf)));
    const spinUs = options.completionSpinUs ?? DEFAULT_COMPLETION_SPIN_US;
    if (!Number.isFinite(spinUs) || spinUs < 0 || spinUs > 1_000_000) {
      throw new RangeError(`completionSpinUs must be 0..1000000 microseconds, got ${spinUs}`);
    }
    this.#spinMs = spinUs / 1000;
    this.#spinStop = options.completionSpinStop;
    this.#lazy = options.lazyCompletionWait ?? false;
    const efd = libc().eventfd(0, EFD_CLOEXEC);
    if (efd < 0) {
      this.#ring.close();
      throw errnoError(-lastErrno(), "eventfd");
    }
    this.#efd = efd;
    try {
      this.#ring.registerEventfd(efd);
    } catch (e) {
      libc().close(efd);
      this.#ring.close();
      throw e;
    }
  }

  /** The ring (for tests of the layout). */
  get ring(): Ring {
    return this.#ring;
  }

  openFile(path: string, o: OpenFileOptions): IoFile {
    const flags = O.RDWR | O.CLOEXEC | (o.createNew ? O.CREAT | O.EXCL : 0) |
      (o.direct ? O.DIRECT : 0) | (o.dsync ? O.DSYNC : 0);
    const fd = libc().open(cString(path), flags, o.mode);
    if (fd < 0) throw errnoError(-lastErrno(), "open", { path });
    return { path, fd } as UringFile;
  }

  allocate(file: IoFile, length: number): boolean {
    const f = file as UringFile;
    if (libc().fallocate(f.fd, 0, 0n, BigInt(length)) < 0) {
      const errno = -lastErrno();
      // File systems without fallocate (EOPNOTSUPP) get their blocks from the zero-fill.
      if (errno !== 95) throw errnoError(errno, "fallocate", { path: f.path });
      return false;
    }
    return true;
  }

  writeParts(file: IoFile, parts: WritePart[], sync: WriteSync): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new PerCoreWalError("Closed", "io_uring backend is closed"));
    }
    return new Promise<void>((resolve, reject) => {
      const chain: Chain = {
        file: file as UringFile,
        parts,
        done: parts.map(() => 0),
        sync,
        outstanding: 0,
        resubmit: false,
        canceled: false,
        synced: false,
        resolve,
        reject,
      };
      this.#enqueue(chain);
    });
  }

  #enqueue(chain: Chain): void {
    if (this.#backlog.length > 0 || !this.#fill(chain)) this.#backlog.push(chain);
    this.#submit();
  }

  /** Fills the SQEs of what is left of a chain; false if the ring has no room for all. */
  #fill(c: Chain): boolean {
    let need = c.sync === true ? 1 : 0;
    // A durable write (RWF_DSYNC) is durable when its CQE comes; a short one is durable as far as
    // it wrote, and its rest is written the same way.
    const rwFlags = c.sync === "dsync" ? RWF_DSYNC : 0;
    for (let i = 0; i < c.parts.length; i++) if (c.done[i] < c.parts[i].data.length) need++;
    if (need > this.#ring.sqSpace) return false;
    c.resubmit = false;
    c.canceled = false;
    c.outstanding = need;
    this.#chains++;
    let left = need;
    for (let i = 0; i < c.parts.length; i++) {
      const p = c.parts[i];
      const done = c.done[i];
      if (done >= p.data.length) continue;
      const len = this.writeLength(p.data.length - done);
      const id = this.#id();
      this.#slots.set(id, { chain: c, kind: "write", part: i, len });
      const addr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(p.data))) + BigInt(done);
      this.#ring.prep(
        Op.WRITE,
        --left > 0 ? IOSQE_IO_LINK : 0,
        c.file.fd,
        p.offset + done,
        addr,
        len,
        rwFlags,
        id,
      );
    }
    if (c.sync === true) {
      const id = this.#id();
      this.#slots.set(id, { chain: c, kind: "fsync", part: -1, len: 0 });
      this.#ring.prep(Op.FSYNC, 0, c.file.fd, 0, 0n, 0, IORING_FSYNC_DATASYNC, id);
    }
    return true;
  }

  /**
   * How many of the `remaining` bytes of a write part one SQE asks for: all of them. A seam for
   * fault injection (`FaultyUringBackend` asks for less, so that the kernel writes short).
   */
  protected writeLength(remaining: number): number {
    return remaining;
  }

  /**
   * `io_uring_submit`: what the kernel returned (`-errno` on failure). A seam for fault injection
   * (`FaultyUringBackend` reports -EAGAIN without submitting).
   */
  protected submitQueued(): number {
    return this.#ring.submit();
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1;
    return id;
  }

  #submit(): void {
    const rc = this.submitQueued();
    if (!this.#submitted(rc)) return;
    this.#spin();
    this.#reap();
    this.#wait();
  }

  /**
   * Handles what `io_uring_submit` returned: on EAGAIN or EBUSY (the kernel is short of
   * resources) the SQEs stay queued and are submitted again shortly; any other error fails
   * everything in flight (the SQEs may not have reached the kernel; nothing is retried).
   * Returns false after such an error.
   */
  #submitted(rc: number): boolean {
    if (rc === -Errno.EAGAIN || rc === -16 /* EBUSY */) {
      this.submitRetries++;
      this.#retry ??= setTimeout(() => {
        this.#retry = undefined;
        if (!this.#closed) this.#submit();
      }, 1);
    } else if (rc < 0) {
      this.#failAll(errnoError(-rc, "io_uring_submit"));
      return false;
    }
    return true;
  }

  /**
   * Polls the completion ring for a bounded time when one durable chain (ending in an fdatasync,
   * or of durable writes) is all that is in flight: someone awaits that sync, and a fast disk
   * completes it sooner than the eventfd read (a blocking-pool thread, a wake-up and a promise)
   * would notice. Runs on the owner thread and only reads the CQ tail; never while idle, never
   * with other work queued.
   */
  #spin(): void {
    if (this.#spinMs <= 0 || this.#chains !== 1 || this.#backlog.length > 0) return;
    let sync = false;
    for (const s of this.#slots.values()) {
      if (s.kind === "fsync" || s.chain.sync === "dsync") sync = true;
    }
    if (!sync) return;
    if (this.#spinSkip > 0) {
      this.#spinSkip--;
      return;
    }
    const ring = this.#ring;
    const stop = this.#spinStop;
    const end = performance.now() + this.#spinMs;
    // The write's CQE comes before the fdatasync's: reap as they come until the chain is done.
    while (this.#chains > 0) {
      if (ring.cqReady) this.#reap();
      else if (stop !== undefined && stop()) return;
      else if (performance.now() >= end) {
        this.spinMisses++;
        this.#spinSkip = SPIN_BACKOFF;
        return;
      }
    }
    this.spinHits++;
  }

  #failAll(err: PerCoreWalError): void {
    const chains = new Set([...this.#slots.values()].map((s) => s.chain));
    this.#slots.clear();
    this.#chains = 0;
    for (const c of chains) c.reject(err);
    for (const c of this.#backlog.splice(0)) c.reject(err);
  }

  /**
   * Blocks this thread until a completion arrives, `bell` (an eventfd) is written or
   * `timeoutMs` passes, then handles the completions there. A read of the bell stays in flight
   * between calls. For an owner with nothing else to do meanwhile (a core Worker, which its
   * producers wake through the bell): one kernel wake-up instead of a thread-pool read and an
   * event-loop turn.
   */
  waitIdle(bell: number, timeoutMs: number): "woken" | "timeout" | "unavailable" {
    const ring = this.#ring;
    if (this.#closed || this.#bellBroken || !ring.canWait) return "unavailable";
    // A refused submit is retried by a timer: wake in time for it.
    let ms = this.#retry !== undefined ? Math.min(timeoutMs, 1) : timeoutMs;
    if (!this.#bellArmed) {
      if (ring.sqSpace > 0) {
        this.#bellArmed = true;
        ring.prep(Op.READ, 0, bell, 0, this.#bellAddr, 8, 0, BELL_ID);
        if (!this.#submitted(ring.submit())) return "unavailable";
      } else {
        // No room for the bell's read (SQEs wait for a retried submit): deaf to producers
        // until there is, so not for long.
        ms = Math.min(ms, 1);
      }
    }
    const woken = ring.cqReady || ring.wait(ms);
    this.pollCompletions();
    return woken ? "woken" : "timeout";
  }

  setOwnerIdle(idle: boolean): void {
    this.#ownerIdle = idle;
    if (idle) {
      this.pollCompletions();
      this.#wait();
    }
  }

  /** Handles the completions already in the CQ ring (no system call when there are none). */
  pollCompletions(): void {
    if (!this.#closed && this.#ring.cqReady) {
      this.#reap();
      if (this.#backlog.length > 0) this.#submit();
    }
  }

  /** Processes completions and refills from the backlog. */
  #reap(): void {
    this.#ring.reap((id, res) => this.#complete(id, res));
    while (this.#backlog.length > 0 && this.#fill(this.#backlog[0])) {
      this.#backlog.shift();
      const rc = this.#ring.submit();
      // A refused submit leaves the chain's SQEs queued: the retry timer submits them.
      if (rc < 0) {
        this.#submitted(rc);
        break;
      }
    }
  }

  #complete(id: number, res: number): void {
    if (id === BELL_ID) {
      this.#bellArmed = false;
      if (res !== 8) this.#bellBroken = true;
      return;
    }
    const slot = this.#slots.get(id);
    if (slot === undefined) return;
    this.#slots.delete(id);
    const c = slot.chain;
    c.outstanding--;
    if (slot.kind === "write") {
      if (res >= 0) {
        c.done[slot.part] += res;
        if (res < slot.len) c.resubmit = true; // short write: the rest of the chain is cancelled
      } else if (res === -Errno.EAGAIN || res === -Errno.EINTR) {
        c.resubmit = true; // nothing written; a write may be retried (an fsync never is)
      } else if (res === -Errno.ECANCELED) {
        c.canceled = true;
      } else {
        const part = c.parts[slot.part];
        c.error ??= errnoError(-res, "write", {
          path: c.file.path,
          offset: part.offset + c.done[slot.part],
        });
      }
    } else if (res === 0) {
      c.synced = true;
    } else if (res === -Errno.ECANCELED) {
      c.canceled = true;
    } else {
      c.error ??= errnoError(-res, "fdatasync", { path: c.file.path });
    }
    if (c.outstanding > 0) return;
    this.#chains--;
    // Cancelled links are expected only behind a short or retried write.
    if (c.canceled && !c.resubmit) {
      c.error ??= errnoError(Errno.ECANCELED, "write", { path: c.file.path });
    }
    if (c.error !== undefined) return c.reject(c.error);
    const complete = c.parts.every((p, i) => c.done[i] >= p.data.length);
    if (complete && (c.sync !== true || c.synced)) return c.resolve();
    // A short or retried write: resubmit the remainder and its fdatasync (the cancelled one
    // never ran, so this is not a retried fsync).
    c.resubmit = false;
    this.#backlog.unshift(c);
  }

  /** Keeps one eventfd read pending while operations are in flight. */
  #wait(): void {
    if (this.#waiting !== undefined || (this.#slots.size === 0 && this.#backlog.length === 0)) {
      return;
    }
    // A busy owner polls (pollCompletions) instead; it arms the wait when it goes idle.
    if (this.#lazy && !this.#ownerIdle) return;
    this.#waiting = libc().read_blocking(this.#efd, this.#efdBuf, 8n).then(() => {
      this.#waiting = undefined;
      if (this.#closed) return;
      this.#reap();
      if (this.#backlog.length > 0) this.#submit();
      else this.#wait();
    });
  }

  readAt(file: IoFile, into: Uint8Array, offset: number): number {
    const f = file as UringFile;
    const n = Number(libc().pread(f.fd, into, BigInt(into.length), BigInt(offset)));
    if (n < 0) throw errnoError(-lastErrno(), "pread", { path: f.path, offset });
    return n;
  }

  truncate(file: IoFile, length: number): void {
    const f = file as UringFile;
    if (libc().ftruncate(f.fd, BigInt(length)) < 0) {
      throw errnoError(-lastErrno(), "ftruncate", { path: f.path });
    }
  }

  closeFile(file: IoFile): void {
    const f = file as UringFile;
    if (f.fd >= 0) libc().close(f.fd);
    f.fd = -1;
  }

  syncDirectory(path: string): void {
    const fd = libc().open(cString(path), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
    if (fd < 0) throw errnoError(-lastErrno(), "open directory", { path });
    const rc = libc().fsync(fd) < 0 ? -lastErrno() : 0;
    libc().close(fd);
    if (rc < 0) throw errnoError(-rc, "fsync directory", { path });
  }

  allocBuffer(size: number): Uint8Array {
    const b = allocAligned(Math.ceil(size / 4096) * 4096, 4096);
    this.#buffers.set(b.bytes.buffer, b);
    return b.bytes.subarray(0, size);
  }

  freeBuffer(buffer: Uint8Array): void {
    const b = this.#buffers.get(buffer.buffer);
    if (b === undefined) return;
    this.#buffers.delete(buffer.buffer);
    freeAligned(b);
  }

  supportsDirect(dir: string): boolean {
    // One name per probe: the cores of one process (Workers of one pid) probe at once.
    const probe = `${dir}/.percore-odirect-probe-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const fd = libc().open(cString(probe), O.RDWR | O.CREAT | O.DIRECT | O.CLOEXEC, 0o600);
    if (fd >= 0) libc().close(fd);
    // The probe exists only if the open succeeded.
    if (fd >= 0) removePath(probe);
    return fd >= 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    // Wake the pending eventfd read so that no FFI call outlives the ring.
    const one = new Uint8Array(8);
    one[0] = 1;
    libc().write(this.#efd, one, 8n);
    await this.#waiting;
    libc().close(this.#efd);
    this.#ring.close();
    for (const b of this.#buffers.values()) freeAligned(b);
    this.#buffers.clear();
  }
}
