/**
 * A fault-injecting backend for faults a disk will not produce on demand: EIO or ENOSPC from a
 * write or an fdatasync, at a chosen operation. It wraps a real backend and passes everything
 * else through, so the rest of the I/O is real.
 *
 * @module
 */

import { Errno, errnoError } from "../../ffi/errno.ts";
import type {
  IoBackend,
  IoFile,
  OpenFileOptions,
  WritePart,
  WritePurpose,
  WriteSync,
} from "./backend.ts";
import { UringBackend, type UringBackendOptions } from "./uring.ts";

/**
 * When and how to fail. Counts start at 1 and cover data chains (not segment zero-fill).
 *
 * @example
 * ```ts
 * import type { FaultPlan } from "./faulty.ts";
 *
 * // Tests only: the 2nd data chain's fdatasync fails with ENOSPC (errno 28).
 * const plan: FaultPlan = { failSyncAt: 2, errno: 28 };
 * console.log(plan);
 * ```
 */
export interface FaultPlan {
  /** Fail the n-th chain's writes with `errno` (nothing of that chain is written). */
  failWriteAt?: number;
  /** Write the n-th chain's data, then fail its fdatasync with `errno`. */
  failSyncAt?: number;
  /** Errno number to fail with (5 = EIO, 28 = ENOSPC). */
  errno: number;
  /** Write only the first half of the n-th chain, then fail it: a torn write. */
  tearWriteAt?: number;
  /** Behave like a file system that refuses `O_DIRECT` (EINVAL on open). */
  refuseDirect?: boolean;
  /**
   * Fail the n-th segment preparation's closing fdatasync with `errno` (counted over "prepare"
   * chains that sync): a segment laid out in the background that cannot be made durable.
   */
  failPrepareAt?: number;
}

/** A backend that fails as planned and otherwise delegates. */
export class FaultyBackend implements IoBackend {
  readonly #inner: IoBackend;
  readonly #plan: FaultPlan;
  #chains = 0;
  #prepareSyncs = 0;
  /** How many faults were injected. */
  injected = 0;
  /** Every data chain asked for, in order: its number and whether it ended with an fdatasync. */
  readonly calls: { chain: number; sync: WriteSync }[] = [];

  /** Wraps `inner`, failing according to `plan`. */
  constructor(inner: IoBackend, plan: FaultPlan) {
    this.#inner = inner;
    this.#plan = plan;
  }

  get kind(): IoBackend["kind"] {
    return this.#inner.kind;
  }

  openFile(path: string, o: OpenFileOptions): IoFile {
    if (this.#plan.refuseDirect && o.direct) throw errnoError(22, "open", { path });
    return this.#inner.openFile(path, o);
  }

  allocate(file: IoFile, length: number): boolean {
    return this.#inner.allocate(file, length);
  }

  async writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: WriteSync,
    purpose?: WritePurpose,
  ): Promise<void> {
    if (purpose === "prepare") {
      if (sync && ++this.#prepareSyncs === this.#plan.failPrepareAt) {
        this.injected++;
        throw errnoError(this.#plan.errno, "fdatasync", { path: file.path });
      }
      return this.#inner.writeParts(file, parts, sync, purpose);
    }
    const n = ++this.#chains;
    this.calls.push({ chain: n, sync });
    const p = this.#plan;
    if (n === p.failWriteAt) {
      this.injected++;
      throw errnoError(p.errno, "write", { path: file.path, offset: parts[0]?.offset });
    }
    if (n === p.tearWriteAt) {
      this.injected++;
      const first = parts[0];
      const half = first.data.subarray(0, Math.floor(first.data.length / 2 / 512) * 512);
      if (half.length > 0) {
        await this.#inner.writeParts(file, [{ data: half, offset: first.offset }], false);
      }
      throw errnoError(p.errno, "write", { path: file.path, offset: first.offset + half.length });
    }
    if (n === p.failSyncAt) {
      this.injected++;
      await this.#inner.writeParts(file, parts, false);
      throw errnoError(p.errno, "fdatasync", { path: file.path });
    }
    return this.#inner.writeParts(file, parts, sync);
  }

  readAt(file: IoFile, into: Uint8Array, offset: number): number {
    return this.#inner.readAt(file, into, offset);
  }

  truncate(file: IoFile, length: number): void {
    this.#inner.truncate(file, length);
  }

  closeFile(file: IoFile): void {
    this.#inner.closeFile(file);
  }

  syncDirectory(path: string): void {
    this.#inner.syncDirectory(path);
  }

  allocBuffer(size: number): Uint8Array {
    return this.#inner.allocBuffer(size);
  }

  freeBuffer(buffer: Uint8Array): void {
    this.#inner.freeBuffer(buffer);
  }

  supportsDirect(dir: string): boolean {
    return !this.#plan.refuseDirect && this.#inner.supportsDirect(dir);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** Options of {@linkcode FaultyUringBackend}: the ring's, and the faults the kernel is made to show. */
export interface FaultyUringOptions extends UringBackendOptions {
  /**
   * Submit every n-th write (of 8 KiB or more) with half its length, so that the kernel performs
   * a real short write and the chain is resubmitted.
   */
  shortWriteEvery?: number;
  /**
   * The first n submissions report -EAGAIN without reaching the kernel (the SQEs stay queued),
   * as a kernel short of resources does, so that the retry path runs.
   */
  eagainSubmits?: number;
}

/**
 * The io_uring backend with kernel behaviours a test cannot cause on demand (short writes,
 * -EAGAIN from submit): real I/O otherwise. The production `UringBackend` carries no test hook,
 * only the two seams this overrides.
 */
export class FaultyUringBackend extends UringBackend {
  readonly #shortWriteEvery: number;
  #eagainSubmits: number;
  #writes = 0;

  /** A ring as `UringBackend` makes it, failing as `options` say. */
  constructor(options: FaultyUringOptions) {
    super(options);
    this.#shortWriteEvery = options.shortWriteEvery ?? 0;
    this.#eagainSubmits = options.eagainSubmits ?? 0;
  }

  protected override writeLength(remaining: number): number {
    const every = this.#shortWriteEvery;
    if (every > 0 && ++this.#writes % every === 0 && remaining >= 8192) {
      return Math.floor(remaining / 2 / 4096) * 4096;
    }
    return remaining;
  }

  protected override submitQueued(): number {
    if (this.#eagainSubmits > 0) {
      this.#eagainSubmits--;
      return -Errno.EAGAIN;
    }
    return super.submitQueued();
  }
}
