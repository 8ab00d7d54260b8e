/**
 * The interface the engine writes through. The io_uring backend and the synchronous backend
 * implement it; tests wrap one in a fault-injecting backend.
 *
 * @module
 */

/**
 * Which backend is in use.
 *
 * @example
 * ```ts
 * import { type BackendKind, PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const kind: BackendKind = manager.backend;
 * if (kind === "sync") console.warn("io_uring unavailable:", manager.fallbackReason);
 * ```
 */
export type BackendKind = "io_uring" | "sync";

/**
 * An open file of a backend (opaque to the engine).
 *
 * @example
 * ```ts
 * import type { IoBackend, IoFile } from "@percore/wal";
 *
 * function open(backend: IoBackend, path: string): IoFile {
 *   return backend.openFile(path, { createNew: false, direct: false, dsync: false, mode: 0o600 });
 * }
 * ```
 */
export interface IoFile {
  /** The path it was opened with. */
  readonly path: string;
}

/**
 * How a segment file is opened.
 *
 * @example
 * ```ts
 * import type { OpenFileOptions } from "@percore/wal";
 *
 * const options: OpenFileOptions = { createNew: true, direct: true, dsync: false, mode: 0o600 };
 * console.log(options);
 * ```
 */
export interface OpenFileOptions {
  /** Create it; fail if it exists. */
  createNew: boolean;
  /** `O_DIRECT`: buffers, offsets and lengths must be aligned to `backend.alignment`. */
  direct: boolean;
  /** `O_DSYNC`: a completed write is durable, no fdatasync needed. */
  dsync: boolean;
  /** Permission bits when creating. */
  mode: number;
}

/**
 * One write of a chain: `data` goes to `offset`.
 *
 * @example
 * ```ts
 * import type { IoBackend, IoFile, WritePart } from "@percore/wal";
 *
 * async function writeDurably(backend: IoBackend, file: IoFile, bytes: Uint8Array) {
 *   const data = backend.allocBuffer(bytes.length);
 *   data.set(bytes);
 *   const parts: WritePart[] = [{ data, offset: 0 }];
 *   await backend.writeParts(file, parts, true); // the write, then fdatasync
 *   backend.freeBuffer(data);
 * }
 * ```
 */
export interface WritePart {
  /** The bytes; memory from `allocBuffer`, referenced until the returned promise settles. */
  data: Uint8Array;
  /** File offset. */
  offset: number;
}

/**
 * Why a chain is written.
 *
 * @example
 * ```ts
 * import type { WritePurpose } from "@percore/wal";
 *
 * const purpose: WritePurpose = "data"; // log records, as opposed to "prepare" (zero-fill)
 * console.log(purpose);
 * ```
 */
export type WritePurpose = "data" | "prepare";

/**
 * How a chain of writes is made durable: `false`, not at all; `true`, by an fdatasync linked after
 * the writes; `"dsync"`, by each write itself (`RWF_DSYNC`: durable when it completes, as with
 * `O_DSYNC`), with no fdatasync after them. A backend without per-write durability may treat
 * `"dsync"` as `true`: either way the chain is durable when its promise resolves.
 *
 * @example
 * ```ts
 * import type { WriteSync } from "@percore/wal";
 *
 * const small: WriteSync = "dsync"; // one request per write, no fdatasync to wait for
 * console.log(small);
 * ```
 */
export type WriteSync = boolean | "dsync";

/**
 * What the engine needs from the I/O layer.
 *
 * @example
 * ```ts
 * import type { IoBackend } from "@percore/wal";
 *
 * // What the engine needs from an I/O layer: here, a summary of a backend.
 * function describe(backend: IoBackend): string {
 *   return `${backend.kind} backend`;
 * }
 * ```
 */
export interface IoBackend {
  /** Which backend this is. */
  readonly kind: BackendKind;
  /** Opens a file. Throws `PerCoreWalError` "Io" (with the errno) on failure. */
  openFile(path: string, options: OpenFileOptions): IoFile;
  /**
   * Reserves `length` bytes of disk from offset 0 (fallocate or an equivalent), reading as zeros.
   * Returns false where it cannot (no fallocate): the caller then writes the zeros itself, which
   * allocates the blocks (and reports a full disk there, not at a later data write).
   */
  allocate(file: IoFile, length: number): boolean;
  /**
   * Writes every part in order, resubmitting short writes, and makes them durable as `sync` says
   * ({@linkcode WriteSync}: not, by a linked fdatasync, or by each write). Resolves when all of it
   * completed; rejects with `PerCoreWalError` "Io" on the first error. A failed fdatasync, or a
   * failed durable write, is never retried. `purpose` tells log data from the zero-fill of a new
   * segment (fault injection counts data only).
   */
  writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: WriteSync,
    purpose?: WritePurpose,
  ): Promise<void>;
  /** Reads into `into` from `offset`; returns the bytes read (0 at end of file). */
  readAt(file: IoFile, into: Uint8Array, offset: number): number;
  /** Sets the file's size. */
  truncate(file: IoFile, length: number): void;
  /** Closes the file. Idempotent. */
  closeFile(file: IoFile): void;
  /** fsyncs a directory, so that entries created or renamed in it are durable. */
  syncDirectory(path: string): void;
  /** Memory the backend can write from (aligned for `O_DIRECT` where it needs to be). */
  allocBuffer(size: number): Uint8Array;
  /** Returns memory from `allocBuffer`. */
  freeBuffer(buffer: Uint8Array): void;
  /** Whether `O_DIRECT` can be used for files in `dir`. */
  supportsDirect(dir: string): boolean;
  /**
   * Handles the completions that are already there, without waiting (optional: a backend whose
   * operations complete on their own has none to look for). A busy owner thread calls it
   * between pieces of work, so that it need not go back to its event loop to notice them.
   */
  pollCompletions?(): void;
  /**
   * Tells a backend created to rely on its owner's polling (`lazyCompletionWait` of the
   * io_uring backend) whether the owner is about to wait (`true`: completions must then wake
   * its event loop) or is busy and polls them itself (`false`). Optional.
   */
  setOwnerIdle?(idle: boolean): void;
  /**
   * Blocks the calling thread until a completion arrives, `bell` (an eventfd) is written or
   * `timeoutMs` passes, and handles the completions there. "unavailable" when the backend
   * cannot (the caller then waits some other way). Optional: only a backend whose completions
   * a thread can sleep on has it (io_uring).
   */
  waitIdle?(bell: number, timeoutMs: number): "woken" | "timeout" | "unavailable";
  /** Releases the backend (the ring). Operations must have settled. */
  close(): Promise<void>;
}
