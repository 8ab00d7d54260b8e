/**
 * `PerCoreWalReader`: validating reader of one segment file.
 *
 * @module
 */

import { enableNativeCrc32c } from "./io/checksum.ts";
import { ioError, isMissing, openRegularFileAsync } from "./fs.ts";
import { readFull, ReadWindow } from "./read_window.ts";
import { classifyDamage } from "./reader_damage.ts";
import { acknowledgedClaim } from "./segment_probes.ts";
import { isZero } from "./zero_bytes.ts";
import { optionalSafeInteger } from "./numbers.ts";
import { PerCoreWalError } from "./errors.ts";
import { checkOptionKeys } from "./option_keys.ts";
import { toPath } from "./path_arg.ts";
import {
  batchMarkerClaim,
  checkRecord,
  decodeBatchRecord,
  type DecodeContext,
  type DecodeCopy,
  decodeRecord,
  decodeSegmentHeader,
  DEFAULT_MAX_RECORD_BYTES,
  R_CORE,
  R_TIMESTAMP,
  R_TYPE,
  RECORD_HEADER_BYTES,
  recordEpoch,
  recordSequence,
  recordSpan,
  recordTimestamp,
  RecordType,
  saltState,
  SEGMENT_DATA_OFFSET,
  type SegmentHeader,
} from "./format.ts";
import type { ReaderOptions, ReadResult } from "./read_result.ts";
import type { PerCoreWalEntry, SegmentStats } from "./types.ts";
import { segmentDamageMessage } from "./segment_message.ts";

/**
 * Bytes of the buffer copied at once for the keys and values of the records in them: one copy
 * per window instead of one per record. A key or value kept alive keeps its window (64 KiB).
 */
const WINDOW = 64 * 1024;

/** What the skim steps return in place of an entry (never handed out). */
const _SKIMMED: PerCoreWalEntry = Object.freeze({
  coreId: -1,
  epoch: 0,
  sequence: 0,
  timestampNs: 0n,
  operation: Object.freeze({ type: "delete", key: new Uint8Array(0) }),
}) as PerCoreWalEntry;

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
  readonly #ctx: DecodeContext;
  readonly #last: boolean;
  /** `liveEnd`: the records end where the bytes stop validating, nothing is classified. */
  readonly #liveEnd: boolean;
  /** In {@linkcode skimToEnd}: records are checked and counted, no entry is built. */
  #skim = false;
  readonly #later: string[] | undefined;
  readonly #expectedFirst: number | undefined;
  /** The file's bytes; the six fields after it are its own, copied after each refill. */
  readonly #bytes: ReadWindow;
  #buf: Uint8Array<ArrayBuffer>;
  #view: DataView;
  /** The file offset of `#buf[0]`. */
  #bufStart = 0;
  /** The first file offset whose byte is in the buffer (the bytes before it are stale). */
  #bufFrom = 0;
  #bufLen = 0;
  #claim = 0;
  #pos = SEGMENT_DATA_OFFSET;
  #done: ReadResult | undefined;
  #count = 0;
  #expected = 0;
  #lastEpoch = 0;
  #lastTs = -Infinity;
  #lastTimestampNs = 0n;
  /** The last timestamp decoded: its two words, and the bigint handed out for them. */
  #tsLo = -1;
  #tsHi = -1;
  #tsBig = 0n;
  #minEpoch = 0;
  #maxEpoch = 0;
  #closed = false;
  /** The copy of the buffer that decoded keys and values view (it is never written to). */
  #window: DecodeCopy | undefined;
  /** Salvage: the record after skipped damage sets the expected sequence. */
  #resync = false;
  #firstSeq: number | undefined;
  /**
   * The entries of an atomic batch record (format v3) not handed out yet: `#pos` stays at the
   * record until its last entry is out, then moves to `#batchEnd` (so the entries before the
   * last have length 0, and the last one the record's length).
   */
  #batch: PerCoreWalEntry[] | undefined;
  #batchAt = 0;
  #batchEnd = 0;

  private constructor(
    path: string,
    file: Deno.FsFile,
    size: number,
    header: SegmentHeader | undefined,
    options: ReaderOptions,
  ) {
    this.path = path;
    this.#bytes = new ReadWindow(file, path, size, options.readAhead ?? false);
    this.#buf = this.#bytes.buf;
    this.#view = this.#bytes.view;
    this.fileSizeBytes = size;
    this.header = header;
    this.#last = options.isLastSegment ?? true;
    this.#liveEnd = options.liveEnd ?? false;
    this.#later = options.laterSegments;
    this.#expectedFirst = options.expectedFirstSequence;
    this.#ctx = {
      salt: header === undefined ? 0 : saltState(header.salt),
      coreId: header?.coreId ?? 0,
      maxRecordBytes: options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
      version: header?.version ?? 1,
    };
    if (header !== undefined) {
      this.#expected = options.startSequence ?? header.firstSequence;
      this.#pos = Math.max(SEGMENT_DATA_OFFSET, options.startOffset ?? SEGMENT_DATA_OFFSET);
      this.#lastEpoch = header.epoch;
      this.#minEpoch = this.#maxEpoch = header.epoch;
    }
  }

  /**
   * Opens a segment and validates its header. Throws `PerCoreWalError`: "SegmentNotFound",
   * "Unsafe" (a FIFO, socket, device or symbolic link in its place), "Io", or
   * "Corrupted"/"ChecksumMismatch"/"Unsupported" for a bad header.
   */
  static async open(path: string | URL, options: ReaderOptions = {}): Promise<PerCoreWalReader> {
    path = toPath(path, "path");
    checkOptionKeys(options, "ReaderOptions");
    // Before the file is opened: a wrong argument is a TypeError or RangeError, never an I/O error.
    optionalSafeInteger(options.startSequence, "startSequence");
    optionalSafeInteger(options.expectedFirstSequence, "expectedFirstSequence");
    if (options.liveEnd !== undefined && typeof options.liveEnd !== "boolean") {
      throw new TypeError(`liveEnd must be a boolean, got ${typeof options.liveEnd}`);
    }
    // Every record read is checked: ISA-L's CRC32C, when there, halves the cost of a read.
    enableNativeCrc32c();
    let file: Deno.FsFile;
    try {
      // Only a regular file: a FIFO's open would block, a symbolic link is never followed.
      file = await openRegularFileAsync(path, "Segment");
    } catch (e) {
      if (isMissing(e)) {
        throw new PerCoreWalError("SegmentNotFound", `Segment "${path}" does not exist`, {
          segment: path,
          cause: (e as PerCoreWalError).cause ?? e,
        });
      }
      throw e;
    }
    try {
      const size = Math.min((await file.stat()).size, options.limitOffset ?? Infinity);
      const head = new Uint8Array(Math.min(SEGMENT_DATA_OFFSET, size));
      await readFull(file, head, 0, path);
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
    if (this.#batch !== undefined) {
      const pos = this.#pos;
      const entry = this.#nextOfBatch();
      return { kind: "entry", entry, offset: pos, length: this.#pos - pos };
    }
    if (this.header === undefined) {
      if (this.#liveEnd) return this.#finish({ kind: "end", offset: 0, preallocatedBytes: 0 });
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
    if (check.status !== "ok" && this.#liveEnd) {
      return this.#finish({ kind: "end", offset: pos, preallocatedBytes: 0 });
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
    if (this.#batch !== undefined) return this.#nextOfBatch();
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
    // The bytes it moved past: 0 for an atomic batch's entries before its last, which carries
    // the whole record (as the fast path counts them).
    return e === undefined
      ? undefined
      : { kind: "entry", entry: e, offset: pos, length: this.#pos - pos };
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
    if (this.#buf[rel + R_TYPE] === RecordType.atomicBatch) {
      return this.#expandBatch(pos, rel, length, epoch, ts);
    }
    if (this.#skim) return this.#skimmed(pos, rel, length, 1, epoch, ts);
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
      epoch,
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

  /**
   * An atomic batch record (checked, in order) as its consecutive entries: the first is returned,
   * the others wait in `#batch`. They share the record's epoch and timestamp.
   */
  #expandBatch(
    pos: number,
    rel: number,
    length: number,
    epoch: number,
    ts: number,
  ): PerCoreWalEntry {
    const v = this.#view;
    if (this.#skim) {
      // Checked whole by checkRecord (its count, and each operation's body): only counted here.
      const span = recordSpan(this.#buf, v, rel, RecordType.atomicBatch);
      return this.#skimmed(pos, rel, length, span, epoch, ts);
    }
    const ops = decodeBatchRecord(this.#buf, v, rel);
    const coreId = v.getUint16(rel + R_CORE, true);
    const timestampNs = this.#timestampOf(v, rel);
    const first = this.#expected;
    const batchLast = first + ops.length - 1;
    const entries = ops.map((operation, i): PerCoreWalEntry => ({
      coreId,
      epoch,
      sequence: first + i,
      timestampNs,
      operation,
      batchLast,
    }));
    this.#firstSeq ??= first;
    this.#expected += ops.length;
    this.#count += ops.length;
    this.#lastEpoch = epoch;
    this.#lastTs = ts;
    this.#lastTimestampNs = timestampNs;
    if (epoch < this.#minEpoch || this.#count === ops.length) this.#minEpoch = epoch;
    if (epoch > this.#maxEpoch) this.#maxEpoch = epoch;
    this.#batch = entries;
    this.#batchAt = 0;
    this.#batchEnd = pos + length;
    return this.#nextOfBatch();
  }

  /**
   * {@linkcode skimToEnd}'s step: the record at `pos` (checked, in order) taking `span`
   * sequences, counted as reading its entries would count them; returns a placeholder entry.
   */
  #skimmed(
    pos: number,
    rel: number,
    length: number,
    span: number,
    epoch: number,
    ts: number,
  ): PerCoreWalEntry {
    this.#firstSeq ??= this.#expected;
    this.#expected += span;
    this.#count += span;
    this.#lastEpoch = epoch;
    this.#lastTs = ts;
    this.#lastTimestampNs = this.#timestampOf(this.#view, rel);
    if (epoch < this.#minEpoch || this.#count === span) this.#minEpoch = epoch;
    if (epoch > this.#maxEpoch) this.#maxEpoch = epoch;
    this.#pos = pos + length;
    return _SKIMMED;
  }

  /**
   * Reads on to the end of the records, as {@linkcode readNext} would with every check (CRC,
   * fields, sequence, epoch and timestamp order), without building their entries: returns the
   * result that ends them; {@linkcode stats} is then as after reading them all. Several times
   * faster than reading them, for what only needs where the records end and their last sequence.
   */
  async skimToEnd(): Promise<Exclude<ReadResult, { kind: "entry" }>> {
    // An atomic batch being handed out: its last entries first.
    while (this.#batch !== undefined) this.#nextOfBatch();
    this.#skim = true;
    try {
      while (true) {
        let e = this.#fastEntry();
        while (e !== undefined) e = this.#fastEntry();
        const r = await this.readNext();
        if (r.kind !== "entry") return r;
      }
    } finally {
      this.#skim = false;
    }
  }

  /** The next entry of the batch being handed out; past its last, `#pos` moves past it. */
  #nextOfBatch(): PerCoreWalEntry {
    const batch = this.#batch!;
    const entry = batch[this.#batchAt++];
    if (this.#batchAt === batch.length) {
      this.#batch = undefined;
      this.#pos = this.#batchEnd;
    }
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

  /** Classifies the damage at `pos` (see `reader_damage.ts`). */
  async #afterDamage(
    pos: number,
    reason: string,
    code: "ChecksumMismatch" | "Corrupted",
    zeroStart = false,
  ): Promise<ReadResult> {
    const later = this.#later;
    const maxRecordBytes = this.#ctx.maxRecordBytes;
    try {
      const { result, claim } = await classifyDamage(
        {
          bytes: this.#bytes,
          header: this.header,
          fileSizeBytes: this.fileSizeBytes,
          decode: this.#ctx,
          isLast: this.#last,
          hasLater: later !== undefined,
          expectedFirst: this.#expectedFirst,
          expected: this.#expected,
          laterClaim: () => acknowledgedClaim(later!, maxRecordBytes),
        },
        pos,
        reason,
        code,
        zeroStart,
      );
      if (claim > this.#claim) this.#claim = claim;
      return result;
    } finally {
      // The classification read on: the buffer may have moved.
      this.#window = undefined;
      this.#adopt();
    }
  }

  /**
   * Makes bytes `[pos, pos + n)` (or up to the end of the file) available in the buffer, and as
   * many after them as it holds.
   */
  async #ensure(pos: number, n: number): Promise<void> {
    const want = Math.min(n, this.fileSizeBytes - pos);
    if (pos >= this.#bufFrom && pos + want <= this.#bufStart + this.#bufLen) return;
    // The window copies bytes of the buffer by offset: it would not match them any more.
    this.#window = undefined;
    // Nothing is decoded from the buffer while it is refilled.
    this.#bufLen = 0;
    try {
      await this.#bytes.fill(pos, n);
    } finally {
      this.#adopt();
    }
  }

  /** Takes the read window's buffer and place as the reader's own (decoding reads those). */
  #adopt(): void {
    const w = this.#bytes;
    this.#buf = w.buf;
    this.#view = w.view;
    this.#bufStart = w.start;
    this.#bufFrom = w.from;
    this.#bufLen = w.length;
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

  /** Statistics of what was read so far (complete once `readNext` returned a non-entry). */
  get stats(): SegmentStats {
    const h = this.header;
    const first = this.#firstSeq ?? this.#expected;
    return {
      coreId: h?.coreId ?? -1,
      path: this.path,
      segmentIndex: h?.segmentIndex ?? -1,
      fileSizeBytes: this.fileSizeBytes,
      validEndOffset: h === undefined ? 0 : this.#pos,
      entryCount: this.#count,
      firstSequence: first,
      lastSequence: this.#expected - 1,
      minEpoch: this.#minEpoch,
      maxEpoch: this.#maxEpoch,
    };
  }

  /**
   * The largest sequence that a batch marker read so far says was acknowledged when its batch
   * was submitted (0 when none; version 1 segments have no markers).
   */
  get acknowledgedClaim(): number {
    return this.#claim;
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
          segmentDamageMessage("read", this.path, r.reason, r.offset),
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
    this.#bufLen = 0;
    this.#window = undefined;
    this.#bytes.close();
  }

  /** Waits for a read ahead in flight, then closes the file. Idempotent. */
  async closeAsync(): Promise<void> {
    if (!this.#closed) await this.#bytes.closeAsync();
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
