/**
 * `PerCoreWalReader`: validating reader of one segment file.
 *
 * @module
 */

import { enableNativeCrc32c } from "./io/checksum.ts";
import { ioError } from "./fs.ts";
import { isUnstartedSegment } from "./segment_files.ts";
import { firstNonZeroWord, isZero } from "./zero_bytes.ts";
import { PerCoreWalError } from "./errors.ts";
import {
  batchMarkerClaim,
  checkRecord,
  type DecodeContext,
  type DecodeCopy,
  decodeRecord,
  decodeSegmentHeader,
  DEFAULT_MAX_RECORD_BYTES,
  R_CORE,
  R_FLAGS,
  R_LENGTH,
  R_PAD,
  R_TIMESTAMP,
  R_TYPE,
  RECORD_HEADER_BYTES,
  recordEpoch,
  recordSequence,
  recordTimestamp,
  RecordType,
  saltState,
  SEGMENT_DATA_OFFSET,
  type SegmentHeader,
} from "./format.ts";
import type { PerCoreWalEntry, SegmentStats } from "./types.ts";

/**
 * What {@linkcode PerCoreWalReader.readNext} found.
 *
 * @example
 * ```ts
 * import { PerCoreWalReader, type ReadResult } from "@percore/wal";
 *
 * await using reader = await PerCoreWalReader.open("./data/wal/wal-0-000000.log");
 * let r: ReadResult;
 * while ((r = await reader.readNext()).kind === "entry") console.log(r.entry.sequence);
 * console.log("ended with", r.kind);
 * ```
 */
export type ReadResult =
  | {
    /** A valid record. */
    kind: "entry";
    /** The decoded record. */
    entry: PerCoreWalEntry;
    /** Its offset in the file. */
    offset: number;
    /** Its length, padding included. */
    length: number;
  }
  | {
    /** No more records: the file ends, or only zeros (preallocated space) follow. */
    kind: "end";
    /** Where the records end. */
    offset: number;
    /** Zero bytes from `offset` to the end of the file. */
    preallocatedBytes: number;
  }
  | {
    /** An incomplete or damaged last record followed only by zeros or nothing: a torn write. */
    kind: "torn";
    /** Where the torn record starts (the end of the valid records). */
    offset: number;
    /** What is wrong with it. */
    reason: string;
  }
  | {
    /** A damaged record followed by a valid one, or damage in a segment that is not the last. */
    kind: "corrupted";
    /** Where the damaged record starts. */
    offset: number;
    /** What is wrong with it. */
    reason: string;
    /** "ChecksumMismatch" or "Corrupted". */
    code: "ChecksumMismatch" | "Corrupted";
    /** Offset of the first valid record after the damage, when there is one. */
    resumeAt?: number;
  };

/**
 * Options of {@linkcode PerCoreWalReader.open}.
 *
 * @example
 * ```ts
 * import { PerCoreWalReader, type ReaderOptions } from "@percore/wal";
 *
 * const options: ReaderOptions = { startSequence: 1000n, isLastSegment: true };
 * await using reader = await PerCoreWalReader.open("./data/wal/wal-0-000003.log", options);
 * for await (const entry of reader) console.log(entry.sequence);
 * ```
 */
export interface ReaderOptions {
  /** Largest record accepted; must match the writer's. Default 16 MiB. */
  maxRecordBytes?: number;
  /**
   * Whether this is its core's last segment. Damage at the end of a segment that is not the
   * last is corruption, not a torn tail. Default true.
   */
  isLastSegment?: boolean;
  /**
   * Read as if the file ended here: for a segment in use, its durable end (bytes after it may
   * be in flight). Default: the file's size.
   */
  limitOffset?: number;
  /** Start reading at this offset (a record boundary) instead of the first record. */
  startOffset?: number;
  /** The sequence of the record at `startOffset` (default: the header's first sequence). */
  startSequence?: bigint;
  /**
   * The core's segments after this one (paths, by index). In a version 2 segment that is not the
   * last, damage that no batch marker here or in these segments proves acknowledged is a torn
   * tail (batches of a rotation in flight), not corruption. Without them such damage is
   * corruption.
   */
  laterSegments?: string[];
  /**
   * The sequence this segment must start at (the previous segment's last + 1), when known. With
   * `laterSegments`, lets a segment whose header block is zero but that holds data be a crash
   * tail although it is not the last (two rotations in flight).
   */
  expectedFirstSequence?: bigint;
  /**
   * Read the next 1 MiB while the records before it are decoded (for sequential scans). Close
   * such a reader with `closeAsync()`, which waits for a read in flight. Default false.
   */
  readAhead?: boolean;
}

const CHUNK = 1024 * 1024;
/**
 * Room before the bytes read ahead, for the start of the record cut by the end of the previous
 * read: a read ahead is spliced on without reading those bytes again.
 */
const HEAD = 64 * 1024;
/**
 * Bytes of the buffer copied at once for the keys and values of the records in them: one copy
 * per window instead of one per record. A key or value kept alive keeps its window (64 KiB).
 */
const WINDOW = 64 * 1024;
/** The unit a disk writes atomically, as the crash model of section 8 assumes. */
const SECTOR = 512;

/**
 * Reads and validates the records of one segment file, in order. It never returns a damaged
 * record and throws nothing but `PerCoreWalError`.
 *
 * @example Iterate a segment
 * ```ts ignore
 * import { PerCoreWalReader } from "@percore/wal";
 *
 * await using reader = await PerCoreWalReader.open("/data/wal/wal-0-000000.log");
 * for await (const entry of reader) {
 *   console.log(entry.sequence, entry.operation.type);
 * }
 * console.log(reader.stats);
 * ```
 */
export class PerCoreWalReader {
  /** The file read. */
  readonly path: string;
  /** The segment header, or undefined for a preallocated segment that was never started. */
  readonly header: SegmentHeader | undefined;
  /** The file's size. */
  readonly fileSizeBytes: number;
  readonly #file: Deno.FsFile;
  readonly #ctx: DecodeContext;
  readonly #last: boolean;
  readonly #later: string[] | undefined;
  readonly #expectedFirst: bigint | undefined;
  #claim = 0;
  #buf = _takeBuffer();
  #view = new DataView(this.#buf.buffer);
  #u32 = new Uint32Array(this.#buf.buffer);
  /** The file offset of `#buf[0]`. */
  #bufStart = 0;
  /** The first file offset whose byte is in the buffer (the bytes before it are stale). */
  #bufFrom = 0;
  #bufLen = 0;
  /** Whether to read ahead, and the read in flight: file bytes `[start, start + len)` at `HEAD`. */
  readonly #readAhead: boolean;
  #ahead:
    | { start: number; len: number; buf: Uint8Array<ArrayBuffer>; done: Promise<unknown> }
    | undefined;
  /** Reads in flight into `#buf` (it cannot be handed on at close while there are). */
  #reading = 0;
  /** The file's position when known (reads in sequence need no seek), else -1. */
  #filePos = -1;
  /** The buffer a read ahead goes to (the one not in use). */
  #spare: Uint8Array<ArrayBuffer> | undefined;
  #pos = SEGMENT_DATA_OFFSET;
  #done: ReadResult | undefined;
  #count = 0;
  #expected = 0;
  #lastEpoch = 0;
  /** The last record's epoch as a number and as the bigint handed out (one per run). */
  #epochNumber = -1;
  #epochBig = 0n;
  #lastTs = -Infinity;
  #lastTimestampNs = 0n;
  /** The last timestamp decoded: its two words, and the bigint handed out for them. */
  #tsLo = -1;
  #tsHi = -1;
  #tsBig = 0n;
  #minEpoch = 0n;
  #maxEpoch = 0n;
  #closed = false;
  /** The copy of the buffer that decoded keys and values view (it is never written to). */
  #window: DecodeCopy | undefined;

  private constructor(
    path: string,
    file: Deno.FsFile,
    size: number,
    header: SegmentHeader | undefined,
    options: ReaderOptions,
  ) {
    this.path = path;
    this.#file = file;
    this.fileSizeBytes = size;
    this.header = header;
    this.#last = options.isLastSegment ?? true;
    this.#later = options.laterSegments;
    this.#expectedFirst = options.expectedFirstSequence;
    this.#readAhead = options.readAhead ?? false;
    this.#ctx = {
      salt: header === undefined ? 0 : saltState(header.salt),
      coreId: header?.coreId ?? 0,
      maxRecordBytes: options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
      version: header?.version ?? 1,
    };
    if (header !== undefined) {
      this.#expected = Number(options.startSequence ?? header.firstSequence);
      this.#pos = Math.max(SEGMENT_DATA_OFFSET, options.startOffset ?? SEGMENT_DATA_OFFSET);
      this.#lastEpoch = Number(header.epoch);
      this.#minEpoch = this.#maxEpoch = header.epoch;
    }
  }

  /**
   * Opens a segment and validates its header. Throws `PerCoreWalError`: "SegmentNotFound",
   * "Io", or "Corrupted"/"ChecksumMismatch"/"Unsupported" for a bad header.
   */
  static async open(path: string, options: ReaderOptions = {}): Promise<PerCoreWalReader> {
    // Every record read is checked: ISA-L's CRC32C, when there, halves the cost of a read.
    enableNativeCrc32c();
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new PerCoreWalError("SegmentNotFound", `Segment "${path}" does not exist`, {
          segment: path,
          cause: e,
        });
      }
      throw ioError(e, "open", path);
    }
    try {
      const size = Math.min((await file.stat()).size, options.limitOffset ?? Infinity);
      const head = new Uint8Array(Math.min(SEGMENT_DATA_OFFSET, size));
      await _readFull(file, head, 0, path);
      const header = isZero(head) ? undefined : decodeSegmentHeader(head, path);
      return new PerCoreWalReader(path, file, size, header, options);
    } catch (e) {
      file.close();
      throw e instanceof PerCoreWalError ? e : ioError(e, "read", path);
    }
  }

  /** Returns the next record, or why there is none. After a non-entry result it repeats it. */
  async readNext(): Promise<ReadResult> {
    while (true) {
      const r = await this.#readOne();
      // Undefined: a batch marker was skipped.
      if (r !== undefined) return r;
    }
  }

  async #readOne(): Promise<ReadResult | undefined> {
    if (this.#closed) throw new PerCoreWalError("Closed", `Reader of "${this.path}" is closed`);
    if (this.#done !== undefined) return this.#done;
    if (this.header === undefined) {
      return this.#finish(await this.#afterDamage(0, "segment header is zero", "Corrupted", true));
    }
    if (this.fileSizeBytes < SEGMENT_DATA_OFFSET) {
      // The header block itself is cut short: no record can follow it.
      return this.#finish({
        kind: "torn",
        offset: this.fileSizeBytes,
        reason: "header block cut short",
      });
    }
    const pos = this.#pos;
    await this.#ensure(pos, RECORD_HEADER_BYTES);
    let check = this.#check(pos);
    if (check.status === "incomplete" && pos + check.length <= this.fileSizeBytes) {
      await this.#ensure(pos, check.length);
      check = this.#check(pos);
    }
    switch (check.status) {
      case "ok":
        return this.#entry(pos, check.length);
      case "zero":
        return this.#finish(await this.#afterDamage(pos, "zeros", "Corrupted", true));
      case "incomplete":
        if (pos >= this.fileSizeBytes) {
          return this.#finish({ kind: "end", offset: pos, preallocatedBytes: 0 });
        }
        return this.#finish(
          await this.#afterDamage(pos, "record extends past the end of the file", "Corrupted"),
        );
      case "bad":
        return this.#finish(await this.#afterDamage(pos, check.reason, check.code));
    }
  }

  /**
   * Reads up to `max` results: entries decoded without waiting while they are buffered, and the
   * result that ends the records (which comes last). For fast sequential scans.
   */
  async readBatch(max = 1024): Promise<ReadResult[]> {
    const out: ReadResult[] = [];
    while (out.length < max) {
      let fast = this.#fast();
      while (fast === null) fast = this.#fast();
      if (fast !== undefined) {
        out.push(fast);
        if (fast.kind !== "entry") break;
        continue;
      }
      const r = await this.readNext();
      out.push(r);
      if (r.kind !== "entry") break;
    }
    return out;
  }

  /**
   * Reads up to `max` entries into `entries`, with their offsets and lengths (padding included)
   * in `offsets` and `lengths` (the arrays are reused: from index 0 on, `count` of them), and
   * the result that ends the records if it came (`end`). The same as {@linkcode readBatch}
   * without an object per entry, for the cursors of a merge.
   */
  async readEntries(
    entries: PerCoreWalEntry[],
    offsets: number[],
    lengths: number[],
    max = 1024,
  ): Promise<{ count: number; end: Exclude<ReadResult, { kind: "entry" }> | undefined }> {
    let n = 0;
    while (n < max) {
      const pos = this.#pos;
      const fast = this.#fastEntry();
      if (fast === null) continue;
      if (fast !== undefined) {
        entries[n] = fast;
        offsets[n] = pos;
        lengths[n++] = this.#pos - pos;
        continue;
      }
      const r = await this.readNext();
      if (r.kind !== "entry") return { count: n, end: r };
      entries[n] = r.entry;
      offsets[n] = r.offset;
      lengths[n++] = r.length;
    }
    return { count: n, end: undefined };
  }

  /**
   * Like {@linkcode readEntries}, without waiting: only the entries already read into the buffer
   * (returns how many; 0 when the next one needs a read, or the records end there).
   */
  readBufferedEntries(
    entries: PerCoreWalEntry[],
    offsets: number[],
    lengths: number[],
    max = 1024,
  ): number {
    let n = 0;
    while (n < max) {
      const pos = this.#pos;
      const fast = this.#fastEntry();
      if (fast === null) continue;
      if (fast === undefined) break;
      entries[n] = fast;
      offsets[n] = pos;
      lengths[n++] = this.#pos - pos;
    }
    return n;
  }

  /**
   * The next entry if it is whole in the buffer and valid; null when a batch marker was skipped;
   * undefined otherwise (slow path).
   */
  #fast(): ReadResult | undefined | null {
    const pos = this.#pos;
    const e = this.#fastEntry();
    return e == null ? e : { kind: "entry", entry: e, offset: pos, length: this.#pos - pos };
  }

  /** {@linkcode #fast}'s entry, without its read result. */
  #fastEntry(): PerCoreWalEntry | undefined | null {
    if (this.#done !== undefined || this.#closed || this.header === undefined) return undefined;
    const pos = this.#pos;
    const rel = pos - this.#bufStart;
    if (
      pos < this.#bufFrom || rel + RECORD_HEADER_BYTES > this.#bufLen || pos >= this.fileSizeBytes
    ) {
      return undefined;
    }
    const c = checkRecord(this.#buf, this.#view, rel, this.#bufLen, this.#ctx);
    if (c.status !== "ok") return undefined;
    const e = this.#decodeAt(pos, c.length);
    // Damage found by the order checks: the slow path returns it.
    return e === false ? undefined : e ?? null;
  }

  #check(pos: number) {
    const rel = pos - this.#bufStart;
    return checkRecord(this.#buf, this.#view, rel, this.#bufLen, this.#ctx);
  }

  /** The entry at `pos`, or undefined for a batch marker (checked for order, then skipped). */
  #entry(pos: number, length: number): ReadResult | undefined {
    const e = this.#decodeAt(pos, length);
    if (e === false) return this.#done;
    return e === undefined ? undefined : { kind: "entry", entry: e, offset: pos, length };
  }

  /**
   * Decodes the record at `pos` and moves past it: its entry, undefined for a batch marker, or
   * false when it is out of order (the result is then `#done`).
   */
  #decodeAt(pos: number, length: number): PerCoreWalEntry | undefined | false {
    const rel = pos - this.#bufStart;
    const v = this.#view;
    const seq = recordSequence(v, rel);
    const epoch = recordEpoch(v, rel);
    const ts = recordTimestamp(v, rel);
    let reason: string | undefined;
    if (this.#resync) {
      // Salvage: the first record after skipped damage sets the sequence and the epoch floor.
      this.#resync = false;
      this.#expected = seq;
    }
    if (seq !== this.#expected) reason = `sequence ${seq} where ${this.#expected} was expected`;
    else if (epoch < this.#lastEpoch) reason = `epoch ${epoch} after epoch ${this.#lastEpoch}`;
    else if (ts < this.#lastTs) reason = "timestamp goes backwards";
    if (reason !== undefined) {
      this.#finish({ kind: "corrupted", offset: pos, reason, code: "Corrupted" });
      return false;
    }
    if (this.#buf[rel + R_TYPE] === RecordType.batch) {
      // Takes no sequence: the marker's sequence is that of the record after it.
      const claim = batchMarkerClaim(v, rel);
      if (claim > this.#claim) this.#claim = claim;
      this.#lastEpoch = epoch;
      this.#lastTs = ts;
      this.#pos = pos + length;
      return undefined;
    }
    // A number is exact up to 2^53: above that (never written, but a file may say so) the
    // decoder reads the bigint itself.
    if (epoch !== this.#epochNumber && epoch <= Number.MAX_SAFE_INTEGER) {
      this.#epochNumber = epoch;
      this.#epochBig = BigInt(epoch);
    }
    let win = this.#window;
    if ((win === undefined || rel < win.from || rel + length > win.to) && length <= WINDOW / 16) {
      // One copy for the records that follow (they are checked before anything views them).
      const to = Math.min(rel + WINDOW, this.#bufLen);
      win = this.#window = { buffer: this.#buf.slice(rel, to).buffer, from: rel, to };
    }
    const entry = decodeRecord(
      this.#buf,
      v,
      rel,
      epoch === this.#epochNumber ? this.#epochBig : undefined,
      win,
      this.#timestampOf(v, rel),
    );
    this.#firstSeq ??= entry.sequence;
    this.#expected++;
    this.#count++;
    this.#lastEpoch = epoch;
    this.#lastTs = ts;
    this.#lastTimestampNs = entry.timestampNs;
    if (entry.epoch < this.#minEpoch || this.#count === 1) this.#minEpoch = entry.epoch;
    if (entry.epoch > this.#maxEpoch) this.#maxEpoch = entry.epoch;
    this.#pos = pos + length;
    return entry;
  }

  /** The record's timestamp as a bigint: the previous record's when its bytes are the same. */
  #timestampOf(v: DataView, rel: number): bigint {
    const lo = v.getUint32(rel + R_TIMESTAMP, true);
    const hi = v.getUint32(rel + R_TIMESTAMP + 4, true);
    if (lo !== this.#tsLo || hi !== this.#tsHi) {
      this.#tsLo = lo;
      this.#tsHi = hi;
      this.#tsBig = v.getBigInt64(rel + R_TIMESTAMP, true);
    }
    return this.#tsBig;
  }

  #finish(r: ReadResult): ReadResult {
    this.#done = r;
    return r;
  }

  /**
   * Classifies what follows the valid records from `pos`: only zeros (end), no valid record
   * (torn tail, in the last segment), or a valid record later (corruption).
   */
  async #afterDamage(
    pos: number,
    reason: string,
    code: "ChecksumMismatch" | "Corrupted",
    zeroStart = false,
  ): Promise<ReadResult> {
    // Only damage a power loss can leave (a sector of the record left as zeros) may be a crash
    // tail; other damage (a flipped bit) is classified as in version 1.
    const v2 = this.header !== undefined && this.header.version >= 2 &&
      await this.#crashShaped(pos);
    const { nonZero, validAt, claim } = await this.#scan(pos, v2);
    if (!nonZero) {
      return { kind: "end", offset: pos, preallocatedBytes: this.fileSizeBytes - pos };
    }
    const what = zeroStart ? "zeros followed by non-zero bytes" : reason;
    if (v2) return await this.#crashTail(pos, what, code, validAt, claim);
    if (validAt !== undefined) {
      return {
        kind: "corrupted",
        offset: pos,
        reason: `${what}, followed by a valid record at offset ${validAt}`,
        code,
        resumeAt: validAt,
      };
    }
    if (this.header === undefined) {
      if (this.#last) {
        // The header block is written in the chain of the segment's first batch: a segment
        // without it never had a batch acknowledged. Its records cannot be checked (the salt is
        // in the header), so this is also what a destroyed header of a last segment looks like.
        return {
          kind: "torn",
          offset: 0,
          reason: "zero segment header followed by data (its first batch never completed)",
        };
      }
      const first = this.#expectedFirst;
      if (
        first !== undefined && this.#later !== undefined &&
        await acknowledgedClaim(this.#later, this.#ctx.maxRecordBytes) < Number(first)
      ) {
        // Its first batch never completed, and no later batch marker says anything from its
        // first sequence on was acknowledged: the crash tail began here.
        return {
          kind: "torn",
          offset: 0,
          reason: "zero segment header followed by data (its first batch never completed; " +
            "no later batch marker claims it)",
        };
      }
      return {
        kind: "corrupted",
        offset: 0,
        reason: "zero segment header followed by data",
        code: "Corrupted",
      };
    }
    if (!this.#last) {
      return {
        kind: "corrupted",
        offset: pos,
        reason: `${what} in a segment that is not the core's last`,
        code,
      };
    }
    return { kind: "torn", offset: pos, reason: what };
  }

  /**
   * Whether the damaged record at `pos` looks like a power loss: a batch reaches the disk in
   * 512-byte sectors, each written or left as it was (zeros: segments are zero-filled and never
   * rewritten). So some sector's share of the record (padding excluded), or of its CRC and
   * length fields, is all zero.
   */
  async #crashShaped(pos: number): Promise<boolean> {
    const size = this.fileSizeBytes;
    await this.#ensure(pos, RECORD_HEADER_BYTES);
    const rel = pos - this.#bufStart;
    const zeroIn = (from: number, to: number) => {
      for (let s = from - (from % SECTOR); s < to; s += SECTOR) {
        const lo = Math.max(s, from) - this.#bufStart;
        const hi = Math.min(s + SECTOR, to) - this.#bufStart;
        let zero = true;
        for (let i = lo; i < hi && zero; i++) zero = this.#buf[i] === 0;
        if (zero) return true;
      }
      return false;
    };
    if (zeroIn(pos, Math.min(pos + 8, size))) return true;
    if (pos + RECORD_HEADER_BYTES > size) return false;
    const length = this.#view.getUint32(rel + R_LENGTH, true);
    if (length < RECORD_HEADER_BYTES || length > this.#ctx.maxRecordBytes + 0xffff) return false;
    const pad = this.#view.getUint16(rel + R_PAD, true);
    const end = Math.min(pos + length - (pad <= length - RECORD_HEADER_BYTES ? pad : 0), size);
    await this.#ensure(pos, end - pos);
    return zeroIn(pos, end);
  }

  /**
   * Version 2: damage at `pos` followed by no valid record, or by valid records none of whose
   * batch markers claims a sequence at or after the first missing one, lies in batches that were
   * never acknowledged (acknowledgements go in order, and every batch submitted after one was
   * acknowledged says so). That is a crash tail; a claim proves acknowledged data was lost.
   */
  async #crashTail(
    pos: number,
    what: string,
    code: "ChecksumMismatch" | "Corrupted",
    validAt: number | undefined,
    claim: number,
  ): Promise<ReadResult> {
    const missing = this.#expected;
    if (claim > this.#claim) this.#claim = claim;
    const later = this.#last || this.#later === undefined
      ? 0
      : await acknowledgedClaim(this.#later, this.#ctx.maxRecordBytes);
    const proof = Math.max(claim, later);
    if (proof >= missing) {
      return {
        kind: "corrupted",
        offset: pos,
        reason: `${what}${
          validAt === undefined ? "" : `, followed by a valid record at offset ${validAt}`
        }; a batch marker${
          claim >= missing ? "" : " in a later segment"
        } says records through sequence ${proof} were acknowledged (sequence ${missing} is lost)`,
        code,
        resumeAt: validAt,
      };
    }
    if (!this.#last && this.#later === undefined) {
      return {
        kind: "corrupted",
        offset: pos,
        reason: `${what} in a segment that is not the core's last`,
        code,
        resumeAt: validAt,
      };
    }
    const after = validAt === undefined ? "" : ", unacknowledged batches follow";
    return { kind: "torn", offset: pos, reason: `${what}${after}` };
  }

  /**
   * Whether any byte from `from` on is non-zero, and the first valid record after `from`. With
   * `all`, goes on to the end of the file and returns the largest batch-marker claim seen.
   */
  async #scan(
    from: number,
    all = false,
  ): Promise<{ nonZero: boolean; validAt?: number; claim: number }> {
    let nonZero = false;
    let validAt: number | undefined;
    let claim = 0;
    const size = this.fileSizeBytes;
    let q = from;
    while (q < size) {
      if (
        q < this.#bufFrom ||
        q + Math.min(RECORD_HEADER_BYTES, size - q) > this.#bufStart + this.#bufLen
      ) {
        // As much as the buffer holds is read (a read ahead spliced on, or a new read).
        await this.#ensure(q, RECORD_HEADER_BYTES);
      }
      const rel = q - this.#bufStart;
      const b = this.#buf;
      // Zero runs, a word at a time: no non-zero byte and no length field at these offsets.
      if ((rel & 3) === 0 && rel + 12 <= this.#bufLen) {
        const u = this.#u32;
        const x = rel >> 2;
        if (u[x] === 0 && u[x + 1] === 0 && u[x + 2] === 0) {
          // The step above, repeated while it applies, 8 words at a time: on to the last
          // offset whose three words are not all zero (or not all in the buffer).
          q += (firstNonZeroWord(u, x + 3, this.#bufLen >> 2) - 2 - x) * 4;
          continue;
        }
      }
      if (b[rel] !== 0) {
        nonZero = true;
        if (this.header === undefined) return { nonZero, claim };
      }
      // A record may start at any offset, whatever its first (CRC) byte; its length field
      // is never zero, which skips zero runs cheaply.
      if (
        q <= from || (b[rel + 4] | b[rel + 5] | b[rel + 6] | b[rel + 7]) === 0 ||
        this.header === undefined || !this.#candidate(rel, q)
      ) {
        q++;
        continue;
      }
      const len = this.#view.getUint32(rel + R_LENGTH, true);
      await this.#ensure(q, len);
      const at = q - this.#bufStart;
      const ok = checkRecord(this.#buf, this.#view, at, this.#bufLen, this.#ctx);
      if (ok.status !== "ok") {
        q++;
        continue;
      }
      // A valid record is non-zero even when its first (CRC) byte is 0.
      nonZero = true;
      validAt ??= q;
      if (!all) return { nonZero, validAt, claim };
      if (this.#buf[at + R_TYPE] === RecordType.batch) {
        claim = Math.max(claim, batchMarkerClaim(this.#view, at));
      }
      q += ok.length;
    }
    return { nonZero, validAt, claim };
  }

  /** A cheap test of whether a record could start at `q` (buffer offset `rel`). */
  #candidate(rel: number, q: number): boolean {
    if (rel + RECORD_HEADER_BYTES > this.#bufLen) return false;
    const b = this.#buf;
    const v = this.#view;
    if (b[rel + R_FLAGS] !== 0 || b[rel + R_TYPE] === 0 || b[rel + R_TYPE] > RecordType.batch) {
      return false;
    }
    if (v.getUint16(rel + R_CORE, true) !== this.#ctx.coreId) return false;
    const len = v.getUint32(rel + R_LENGTH, true);
    return len >= RECORD_HEADER_BYTES && len <= this.#ctx.maxRecordBytes + 0xffff &&
      q + len <= this.fileSizeBytes;
  }

  /**
   * Makes bytes `[pos, pos + n)` (or up to the end of the file) available in the buffer, and as
   * many after them as it holds.
   */
  async #ensure(pos: number, n: number): Promise<void> {
    const want = Math.min(n, this.fileSizeBytes - pos);
    const end = this.#bufStart + this.#bufLen;
    if (pos >= this.#bufFrom && pos + want <= end) return;
    // The window copies bytes of the buffer by offset: it would not match them any more.
    this.#window = undefined;
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
        ahead.start === end && pos >= this.#bufFrom && end - pos <= HEAD &&
        pos + want <= ahead.start + ahead.len
      ) {
        // The read ahead continues the buffer: move the bytes from `pos` on in front of it.
        ahead.buf.set(this.#buf.subarray(pos - this.#bufStart, this.#bufLen), HEAD - (end - pos));
        this.#use(ahead.buf);
        this.#bufStart = ahead.start - HEAD;
        this.#bufFrom = pos;
        this.#bufLen = HEAD + ahead.len;
        this.#readNextAhead();
        return;
      }
      this.#spare ??= ahead.buf;
    }
    if (want > this.#buf.length) {
      this.#use(new Uint8Array(Math.ceil(Math.max(want, this.#buf.length * 2) / 4) * 4));
    }
    const len = Math.min(this.#buf.length, this.fileSizeBytes - pos);
    // Until the read completes the buffer holds nothing valid.
    this.#bufLen = 0;
    const at = this.#filePos;
    this.#filePos = -1;
    // After close() the buffer may be another reader's: no read goes into it (and the file is
    // closed, so a read in flight then fails).
    if (this.#closed) throw this.#closedError();
    this.#reading++;
    try {
      this.#filePos = await _readFull(this.#file, this.#buf.subarray(0, len), pos, this.path, at);
    } catch (e) {
      throw this.#closed ? this.#closedError() : e;
    } finally {
      this.#reading--;
    }
    this.#bufStart = this.#bufFrom = pos;
    this.#bufLen = len;
    this.#readNextAhead();
  }

  #closedError(): PerCoreWalError {
    return new PerCoreWalError("Closed", `Reader of "${this.path}" is closed`);
  }

  /** Makes `buf` the buffer; the one it replaces becomes the spare (if of the usual size). */
  #use(buf: Uint8Array<ArrayBuffer>): void {
    if (this.#buf.length === HEAD + CHUNK) this.#spare = this.#buf;
    this.#buf = buf;
    this.#view = new DataView(buf.buffer);
    this.#u32 = new Uint32Array(buf.buffer);
  }

  /** Starts reading the bytes after the buffer into the spare buffer, if reading ahead. */
  #readNextAhead(): void {
    const start = this.#bufStart + this.#bufLen;
    if (!this.#readAhead || this.#closed || start >= this.fileSizeBytes) return;
    const buf = this.#spare ?? _takeBuffer();
    this.#spare = undefined;
    const len = Math.min(CHUNK, this.fileSizeBytes - start);
    const at = this.#filePos;
    this.#filePos = -1;
    const done = _readFull(this.#file, buf.subarray(HEAD, HEAD + len), start, this.path, at)
      .then((p) => void (this.#filePos = p));
    // Waited for by the next #ensure (which sees its error) or by closeAsync().
    done.catch(() => {});
    this.#ahead = { start, len, buf, done };
  }

  /**
   * Goes on reading at `offset` (from a "corrupted" result's `resumeAt`) as if the damage were not
   * there: the record there sets the expected sequence. For salvaging what follows damage.
   */
  resume(offset: number): void {
    if (this.#done?.kind !== "corrupted" || offset <= this.#done.offset) {
      throw new PerCoreWalError("Corrupted", `Cannot resume "${this.path}" at offset ${offset}`);
    }
    this.#done = undefined;
    this.#pos = offset;
    this.#resync = true;
  }
  #resync = false;
  #firstSeq: bigint | undefined;

  /** Statistics of what was read so far (complete once `readNext` returned a non-entry). */
  get stats(): SegmentStats {
    const h = this.header;
    const first = this.#firstSeq ?? BigInt(this.#expected);
    return {
      coreId: h?.coreId ?? -1,
      path: this.path,
      segmentIndex: h?.segmentIndex ?? -1,
      fileSizeBytes: this.fileSizeBytes,
      validEndOffset: h === undefined ? 0 : this.#pos,
      entryCount: this.#count,
      firstSequence: first,
      lastSequence: BigInt(this.#expected) - 1n,
      minEpoch: this.#minEpoch,
      maxEpoch: this.#maxEpoch,
    };
  }

  /**
   * The largest sequence that a batch marker read so far says was acknowledged when its batch
   * was submitted (0n when none; version 1 segments have no markers).
   */
  get acknowledgedClaim(): bigint {
    return BigInt(this.#claim);
  }

  /** The timestamp of the last record read (0 when none), for writers that continue the log. */
  get lastTimestampNs(): bigint {
    return this.#lastTimestampNs;
  }

  /**
   * Yields every valid entry. Ends at the end of the records or at a torn tail (see
   * `readNext` for which); throws `PerCoreWalError` at corruption.
   */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<PerCoreWalEntry> {
    while (true) {
      const r = await this.readNext();
      if (r.kind === "entry") {
        yield r.entry;
        continue;
      }
      if (r.kind === "corrupted") {
        throw new PerCoreWalError(
          r.code,
          `Cannot read segment "${this.path}": ${r.reason} at offset ${r.offset}`,
          { segment: this.path, offset: r.offset, coreId: this.header?.coreId },
        );
      }
      return;
    }
  }

  /**
   * Closes the file. Idempotent. A read ahead in flight completes after it (its buffer is
   * dropped); `closeAsync()` waits for it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The buffers go to the next reader, unless a read in flight still writes to them.
    if (this.#reading === 0) _giveBuffer(this.#buf);
    if (this.#ahead === undefined && this.#spare !== undefined) _giveBuffer(this.#spare);
    this.#ahead = undefined;
    this.#spare = undefined;
    this.#bufLen = 0;
    this.#window = undefined;
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

  /** Closes the file. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the file (after a read ahead in flight). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.closeAsync();
  }
}

/**
 * Scans a whole segment: its statistics and how its records end.
 *
 * @example
 * ```ts
 * import { scanSegment } from "@percore/wal";
 *
 * const { stats, end } = await scanSegment("./data/wal/wal-0-000000.log", { isLastSegment: true });
 * console.log(`${stats.entryCount} entries, sequences ${stats.firstSequence}..${stats.lastSequence}`);
 * console.log("ends with", end.kind);
 * ```
 */
export async function scanSegment(
  path: string,
  options: ReaderOptions = {},
): Promise<
  {
    stats: SegmentStats;
    end: Exclude<ReadResult, { kind: "entry" }>;
    header?: SegmentHeader;
    lastTimestampNs: bigint;
  }
> {
  using reader = await PerCoreWalReader.open(path, options);
  let r = await reader.readNext();
  while (r.kind === "entry") r = await reader.readNext();
  return {
    stats: reader.stats,
    end: r,
    header: reader.header,
    lastTimestampNs: reader.lastTimestampNs,
  };
}

/**
 * The largest acknowledged sequence that the batch markers of these segments (a core's, by
 * index) claim (0 when none). A segment with a zero header but data cannot be checked (the salt
 * is in the header) and claims nothing: its first batch never completed, so none of its records
 * was acknowledged, and its claims are lost with its header (FORMAT.md, section 8, limits).
 */
export async function acknowledgedClaim(paths: string[], maxRecordBytes: number): Promise<number> {
  let claim = 0;
  const started = paths.filter((p) => !isUnstartedSegment(p));
  for (const path of started) {
    using r = await PerCoreWalReader.open(path, { maxRecordBytes, isLastSegment: true });
    if (r.header === undefined) continue;
    let x = await r.readNext();
    while (x.kind === "entry") x = await r.readNext();
    claim = Math.max(claim, Number(r.acknowledgedClaim));
  }
  return claim;
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

/**
 * Reads `into.length` bytes at `offset` (zeros past the end of the file); returns the file's
 * position after them. `at`, the file's position if known, saves a seek when it is `offset`.
 */
async function _readFull(
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
