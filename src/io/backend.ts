/**
 * The interface the engine writes through. The io_uring backend and the synchronous backend
 * implement it; tests wrap one in a fault-injecting backend.
 *
 * @module
 */

/** Which backend is in use. */
export type BackendKind = "io_uring" | "sync";

/** An open file of a backend (opaque to the engine). */
export interface IoFile {
  /** The path it was opened with. */
  readonly path: string;
}

/** How a segment file is opened. */
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

/** One write of a chain: `data` goes to `offset`. */
export interface WritePart {
  /** The bytes; memory from `allocBuffer`, referenced until the returned promise settles. */
  data: Uint8Array;
  /** File offset. */
  offset: number;
}

/** Why a chain is written. */
export type WritePurpose = "data" | "prepare";

/** What the engine needs from the I/O layer. */
export interface IoBackend {
  /** Which backend this is. */
  readonly kind: BackendKind;
  /** Opens a file. Throws `PerCoreWalError` "Io" (with the errno) on failure. */
  openFile(path: string, options: OpenFileOptions): IoFile;
  /** Reserves `length` bytes of disk from offset 0 (fallocate or an equivalent). */
  allocate(file: IoFile, length: number): void;
  /**
   * Writes every part in order, resubmitting short writes, then, if `sync`, makes them durable
   * (fdatasync linked after the writes). Resolves when all of it completed; rejects with
   * `PerCoreWalError` "Io" on the first error. A failed fdatasync is never retried. `purpose`
   * tells log data from the zero-fill of a new segment (fault injection counts data only).
   */
  writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: boolean,
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
  /** Releases the backend (the ring). Operations must have settled. */
  close(): Promise<void>;
}
