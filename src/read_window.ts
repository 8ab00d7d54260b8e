/**
 * The bytes of a segment that a reader decodes from: one buffer over a stretch of the file,
 * refilled by offset, with an optional read ahead into a second buffer that is spliced on
 * without reading again the record cut by the end of the first. Buffers of closed readers go
 * back to a small pool for the next reader.
 *
 * @module
 */

import { ioError } from "./fs.ts";
import { PerCoreWalError } from "./errors.ts";

/** Bytes read at once (and read ahead). */
const CHUNK = 1024 * 1024;
/**
 * Room before the bytes read ahead, for the start of the record cut by the end of the previous
 * read: a read ahead is spliced on without reading those bytes again.
 */
const HEAD = 64 * 1024;

/**
 * A buffer over `[from, start + length)` of one file. The fields are plain (not getters) because
 * the reader copies them after each {@linkcode ReadWindow.fill} and decodes from its copies.
 */
export class ReadWindow {
  /** The buffer. */
  buf: Uint8Array<ArrayBuffer> = _takeBuffer();
  /** A view of `buf`. */
  view: DataView = new DataView(this.buf.buffer);
  /** `buf` as 32-bit words (zero runs are skipped a word at a time). */
  words: Uint32Array = new Uint32Array(this.buf.buffer);
  /** The file offset of `buf[0]`. */
  start = 0;
  /** The first file offset whose byte is in the buffer (the bytes before it are stale). */
  from = 0;
  /** How many bytes of `buf` hold file bytes. */
  length = 0;
  readonly #file: Deno.FsFile;
  readonly #path: string;
  readonly #sizeBytes: number;
  /** Whether to read ahead, and the read in flight: file bytes `[start, start + len)` at `HEAD`. */
  readonly #readAhead: boolean;
  #ahead:
    | { start: number; len: number; buf: Uint8Array<ArrayBuffer>; done: Promise<unknown> }
    | undefined;
  /** Reads in flight into `buf` (it cannot be handed on at close while there are). */
  #reading = 0;
  /** The file's position when known (reads in sequence need no seek), else -1. */
  #filePos = -1;
  /** The buffer a read ahead goes to (the one not in use). */
  #spare: Uint8Array<ArrayBuffer> | undefined;
  #closed = false;

  /** A window over `file` (`sizeBytes` long, named `path` in errors); it owns the file. */
  constructor(file: Deno.FsFile, path: string, sizeBytes: number, readAhead: boolean) {
    this.#file = file;
    this.#path = path;
    this.#sizeBytes = sizeBytes;
    this.#readAhead = readAhead;
  }

  /**
   * Makes bytes `[pos, pos + n)` (or up to the end of the file) available in the buffer, and as
   * many after them as it holds. Returns whether the buffer changed (false: they were there).
   */
  async fill(pos: number, n: number): Promise<boolean> {
    const want = Math.min(n, this.#sizeBytes - pos);
    const end = this.start + this.length;
    if (pos >= this.from && pos + want <= end) return false;
    const ahead = this.#ahead;
    if (ahead !== undefined) {
      // Every read waits for the read ahead: they share the file's position.
      this.#ahead = undefined;
      try {
        await ahead.done;
      } catch (e) {
        // A read failed by close() is reported as the close.
        if (!this.#closed) throw e;
      }
      // Closed meanwhile: its buffers may be another reader's now.
      if (this.#closed) throw this.#closedError();
      if (
        ahead.start === end && pos >= this.from && end - pos <= HEAD &&
        pos + want <= ahead.start + ahead.len
      ) {
        // The read ahead continues the buffer: move the bytes from `pos` on in front of it.
        ahead.buf.set(this.buf.subarray(pos - this.start, this.length), HEAD - (end - pos));
        this.#use(ahead.buf);
        this.start = ahead.start - HEAD;
        this.from = pos;
        this.length = HEAD + ahead.len;
        this.#readNextAhead();
        return true;
      }
      this.#spare ??= ahead.buf;
    }
    await this.#read(pos, want);
    return true;
  }

  /** Reads from `pos` into the buffer (grown to hold `want` bytes if needed). */
  async #read(pos: number, want: number): Promise<void> {
    if (want > this.buf.length) {
      this.#use(new Uint8Array(Math.ceil(Math.max(want, this.buf.length * 2) / 4) * 4));
    }
    const len = Math.min(this.buf.length, this.#sizeBytes - pos);
    // Until the read completes the buffer holds nothing valid.
    this.length = 0;
    const at = this.#filePos;
    this.#filePos = -1;
    // After close() the buffer may be another reader's: no read goes into it (and the file is
    // closed, so a read in flight then fails).
    if (this.#closed) throw this.#closedError();
    this.#reading++;
    try {
      this.#filePos = await readFull(this.#file, this.buf.subarray(0, len), pos, this.#path, at);
    } catch (e) {
      throw this.#closed ? this.#closedError() : e;
    } finally {
      this.#reading--;
    }
    this.start = this.from = pos;
    this.length = len;
    this.#readNextAhead();
  }

  #closedError(): PerCoreWalError {
    return new PerCoreWalError("Closed", `Reader of "${this.#path}" is closed`);
  }

  /** Makes `buf` the buffer; the one it replaces becomes the spare (if of the usual size). */
  #use(buf: Uint8Array<ArrayBuffer>): void {
    if (this.buf.length === HEAD + CHUNK) this.#spare = this.buf;
    this.buf = buf;
    this.view = new DataView(buf.buffer);
    this.words = new Uint32Array(buf.buffer);
  }

  /** Starts reading the bytes after the buffer into the spare buffer, if reading ahead. */
  #readNextAhead(): void {
    const start = this.start + this.length;
    if (!this.#readAhead || this.#closed || start >= this.#sizeBytes) return;
    const buf = this.#spare ?? _takeBuffer();
    this.#spare = undefined;
    const len = Math.min(CHUNK, this.#sizeBytes - start);
    const at = this.#filePos;
    this.#filePos = -1;
    const done = readFull(this.#file, buf.subarray(HEAD, HEAD + len), start, this.#path, at)
      .then((p) => void (this.#filePos = p));
    // Waited for by the next fill (which sees its error) or by closeAsync().
    done.catch(() => {});
    this.#ahead = { start, len, buf, done };
  }

  /**
   * Closes the file. Idempotent. A read ahead in flight completes after it (its buffer is
   * dropped); `closeAsync()` waits for it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The buffers go to the next reader, unless a read in flight still writes to them.
    if (this.#reading === 0) _giveBuffer(this.buf);
    if (this.#ahead === undefined && this.#spare !== undefined) _giveBuffer(this.#spare);
    this.#ahead = undefined;
    this.#spare = undefined;
    this.length = 0;
    this.#file.close();
  }

  /** Waits for a read ahead in flight, then closes the file. Idempotent. */
  async closeAsync(): Promise<void> {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead !== undefined && !this.#closed) {
      await ahead.done.catch(() => {});
      this.#spare ??= ahead.buf;
    }
    this.close();
  }
}

/**
 * Reads `into.length` bytes at `offset` (zeros past the end of the file); returns the file's
 * position after them. `at`, the file's position if known, saves a seek when it is `offset`.
 */
export async function readFull(
  file: Deno.FsFile,
  into: Uint8Array,
  offset: number,
  path: string,
  at = -1,
): Promise<number> {
  try {
    if (at !== offset) await file.seek(offset, Deno.SeekMode.Start);
    let n = 0;
    while (n < into.length) {
      const r = await file.read(into.subarray(n));
      if (r === null) {
        into.fill(0, n);
        break;
      }
      n += r;
    }
    return offset + n;
  } catch (e) {
    throw ioError(e, "read", path, offset);
  }
}

/**
 * Read buffers of closed readers, for the next reader to open (a merge opens one per segment per
 * core): one new buffer per segment, garbage only a full collection frees, made the peak memory
 * grow with the number of segments read. Two at most, held weakly: a full collection frees them
 * once no reader is open. Nothing outside a reader ever views its buffer (decoded keys and
 * values are copies).
 */
const _pool: WeakRef<Uint8Array<ArrayBuffer>>[] = [];

function _takeBuffer(): Uint8Array<ArrayBuffer> {
  while (_pool.length > 0) {
    const buf = _pool.pop()!.deref();
    if (buf !== undefined) return buf;
  }
  return new Uint8Array(HEAD + CHUNK);
}

function _giveBuffer(buf: Uint8Array<ArrayBuffer>): void {
  if (buf.length !== HEAD + CHUNK || _pool.length >= 2) return;
  if (_pool.some((r) => r.deref() === buf)) return;
  _pool.push(new WeakRef(buf));
}
