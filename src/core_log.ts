/**
 * The engine: the single-threaded owner of one core's ring and segments. Appends encode into a
 * batch buffer; batches are written with a linked fdatasync (or O_DSYNC), several in flight,
 * and acknowledged strictly in order.
 *
 * @module
 */

import { PerCoreWalConfig, type ResolvedWalOptions } from "./config.ts";
import { durableWaitSignal, raceSignal, type WaitOptions, waitSignal } from "./abort.ts";
import { PerCoreWalError } from "./errors.ts";
import { safeInteger } from "./numbers.ts";
import { emitEvent, type WalEventHandler } from "./events.ts";
import { checkOptionKeys } from "./option_keys.ts";
import {
  BATCH_MARKER_BYTES,
  batchBodyLength,
  type BatchOperationInput,
  bodyLength,
  FORMAT_VERSION,
  getU64,
  normalizeBatch,
  normalizeOperation,
  PUT_OVERHEAD_BYTES,
  R_CRC,
  R_EPOCH,
  R_LENGTH,
  R_TIMESTAMP,
  R_TYPE,
  RECORD_HEADER_BYTES,
  recordCrc,
  recordSequence,
  recordSpan,
  RecordType,
  saltState,
  SEGMENT_DATA_OFFSET,
  setNsFromUs,
  setU64,
  toBytes,
  toKey,
  writeBatchBody,
  writeBody,
  writeRecordHeader,
} from "./format.ts";
import type { LatencyBuckets } from "./histogram.ts";
import type { BackendKind, IoBackend } from "./io/backend.ts";
import { type Batch, BatchBuffers, openBatch, padBatch } from "./batch.ts";
import type { CoreLogMetrics, CoreLogOptions } from "./core_log_options.ts";
import { BatchPipeline } from "./batch_pipeline.ts";
import { chooseWriteMode } from "./write_mode.ts";
import { enableNativeCrc32c } from "./io/checksum.ts";
import { type Segment, SegmentPreparer } from "./segment_prep.ts";
import { nextSegmentWindow } from "./segment_window.ts";
import { SharedCopier } from "./shared_copy.ts";
import {
  checkpointOperation,
  commitOperation,
  deleteOperation,
  epochBarrierOperation,
} from "./operations.ts";
import { createBackend } from "./io/choose.ts";
import { recoverCoreSegments } from "./open_recovery.ts";
import { ensureDirectory } from "./segment_files.ts";
import type {
  Bytes,
  CommitOffsets,
  WalOperation,
  WalOperationInput,
  WalPosition,
  WriteModeInUse,
} from "./types.ts";

/**
 * One core's log. Create it with {@linkcode CoreLog.open}; the Worker runtime puts the public
 * `CoreWalWriter` in front of it.
 *
 * @example
 * ```ts
 * import { CoreLog, PerCoreWalConfig } from "@percore/wal";
 *
 * // One core's log on the current thread, without a Worker.
 * await using log = await CoreLog.open(new PerCoreWalConfig("./data/engine", 1), 0);
 * const seq = log.appendPut("key", "value");
 * await log.sync();
 * console.log(`sequence ${seq} is durable`);
 * ```
 */
export class CoreLog {
  /** The core this log belongs to. */
  readonly coreId: number;
  /** Why the io_uring backend was not used, when `backend: "auto"` fell back. */
  readonly fallbackReason: string | undefined;
  readonly #config: PerCoreWalConfig;
  readonly #o: ResolvedWalOptions;
  readonly #io: IoBackend;
  readonly #ownsIo: boolean;
  readonly #mode: WriteModeInUse;
  readonly #align: number;
  #seg!: Segment;
  #next: Segment | undefined;
  #segTail = SEGMENT_DATA_OFFSET;
  #salt = 0;
  /** The batch that takes appends, until it is sealed. */
  #openBatch: Batch | undefined;
  readonly #segments: SegmentPreparer;
  /** Segments in use whose preparation failed: their batches wait for a retry. */
  readonly #stalled = new Set<Segment>();
  #nextSeq = 1;
  #epoch = 0;
  #lastUs = 0;
  #pendingBytes = 0;
  readonly #buffers: BatchBuffers;
  readonly #pipeline: BatchPipeline;
  #flushWanted = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failed: PerCoreWalError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** The epoch of the last batch begun: a core's epoch never decreases. */
  #batchEpoch = 0;
  #records = 0;
  #bytes = 0;
  /** Batches sealed since open (submitted or not: some may wait for their segment's layout). */
  #sealedBatches = 0;
  /** Copies runs out of shared memory at memcpy speed whatever their alignment. */
  readonly #copier = new SharedCopier();
  #stampUs = -1;
  #stampEpoch = -1;
  /** Epoch (low, high word) and timestamp in ns (low, high) as `appendFrom` stamps them. */
  readonly #stampWords = new Uint32Array(4);

  private constructor(
    config: PerCoreWalConfig,
    coreId: number,
    io: IoBackend,
    ownsIo: boolean,
    mode: WriteModeInUse,
    fallbackReason: string | undefined,
    options: CoreLogOptions,
  ) {
    this.#config = config;
    this.#o = config.options;
    this.coreId = coreId;
    this.#io = io;
    this.#ownsIo = ownsIo;
    this.#mode = mode;
    this.#align = mode === "buffered" ? 1 : 4096;
    this.#buffers = new BatchBuffers(io, this.#o.maxBatchBytes, this.#o.maxInFlightBatches);
    this.fallbackReason = fallbackReason;
    this.#segments = new SegmentPreparer(config, coreId, io, mode, (seg) => this.#prepared(seg));
    this.#pipeline = new BatchPipeline(
      coreId,
      io,
      mode,
      this.#o.maxInFlightBatches,
      this.#buffers,
      this.#segments,
      {
        acknowledged: (recordBytes) => this.#pendingBytes -= recordBytes,
        pumped: () => this.#flushIfWanted(),
        failed: (error) => {
          this.#failed = error;
          clearTimeout(this.#timer);
        },
      },
      options,
    );
  }

  /**
   * Opens core `coreId`'s log in `config.baseDir`: creates it, or continues after the last
   * valid record (a torn tail is cut; corruption refuses with `PerCoreWalError`).
   */
  static async open(
    config: PerCoreWalConfig,
    coreId: number,
    options: CoreLogOptions = {},
  ): Promise<CoreLog> {
    if (!(config instanceof PerCoreWalConfig)) {
      throw new TypeError("config must be a PerCoreWalConfig");
    }
    checkOptionKeys(options, "CoreLogOptions");
    enableNativeCrc32c();
    if (!Number.isInteger(coreId) || coreId < 0 || coreId >= config.numCores) {
      throw new PerCoreWalError(
        "InvalidCoreId",
        `Core id ${coreId} is out of range: this WAL has cores 0 to ${config.numCores - 1}`,
        { coreId },
      );
    }
    ensureDirectory(config.baseDir, config.options);
    const made = options.backend ? { backend: options.backend } : createBackend(
      config.options,
      options.completionSpinStop,
      options.lazyCompletionWait,
    );
    const io = made.backend;
    let log: CoreLog | undefined;
    try {
      const mode = chooseWriteMode(config, io);
      log = new CoreLog(
        config,
        coreId,
        io,
        options.backend === undefined,
        mode,
        made.fallbackReason,
        options,
      );
      log.#epoch = options.minEpoch === undefined ? 0 : safeInteger(options.minEpoch, "minEpoch");
      if (made.fallbackReason !== undefined) {
        emitEvent(options.onEvent, { type: "backendFallback", reason: made.fallbackReason });
      }
      await log.#recover(options.onEvent);
      return log;
    } catch (e) {
      if (log !== undefined) await log.#release();
      else if (options.backend === undefined) await io.close();
      throw e;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Appends

  /** Appends a `put`; returns its sequence. */
  appendPut(key: Bytes, value: Bytes): number {
    const k = toKey(key);
    const v = toBytes(value, "value");
    const len = PUT_OVERHEAD_BYTES + k.length + v.length;
    const pos = this.#reserve(len);
    const b = this.#openBatch!;
    const seq = this.#nextSeq++;
    writeRecordHeader(
      b.view,
      pos,
      len,
      RecordType.put,
      this.coreId,
      this.#epoch,
      seq,
      this.#now(),
      0,
    );
    b.view.setUint16(pos + RECORD_HEADER_BYTES, k.length, true);
    b.buf.set(k, pos + PUT_OVERHEAD_BYTES);
    b.buf.set(v, pos + PUT_OVERHEAD_BYTES + k.length);
    return this.#commit(b, pos, len, seq);
  }

  /** Appends a `delete`; returns its sequence. */
  appendDelete(key: Bytes): number {
    return this.#append(deleteOperation(key));
  }

  /** Appends a `checkpoint` marker; returns its sequence. */
  appendCheckpoint(id: number): number {
    return this.#append(checkpointOperation(id));
  }

  /** Appends a `commit` of source offsets (and a watermark); returns its sequence. */
  appendCommit(offsets: CommitOffsets, watermark?: number): number {
    return this.#append(commitOperation(offsets, watermark));
  }

  /**
   * Appends an epoch barrier: from it on, this core's records have at least `epoch` (default:
   * the core's current epoch). Returns its sequence.
   */
  appendEpochBarrier(epoch?: number): number {
    return this.#append(epochBarrierOperation(epoch, this.#epoch));
  }

  /** Appends any operation; returns its sequence. */
  append(op: WalOperationInput): number {
    return this.#append(normalizeOperation(op, this.#epoch));
  }

  #append(op: WalOperation): number {
    const len = RECORD_HEADER_BYTES + bodyLength(op);
    const pos = this.#reserve(len);
    if (op.type === "epochBarrier" && op.epoch > this.#epoch) this.#epoch = op.epoch;
    const b = this.#openBatch!;
    const seq = this.#nextSeq++;
    writeRecordHeader(
      b.view,
      pos,
      len,
      RecordType[op.type],
      this.coreId,
      this.#epoch,
      seq,
      this.#now(),
      0,
    );
    writeBody(op, b.buf, b.view, pos + RECORD_HEADER_BYTES);
    return this.#commit(b, pos, len, seq);
  }

  /**
   * Appends several operations (puts, deletes, commits) as one atomic batch: one record (format
   * version 3) that takes one sequence per operation, consecutive. After any crash, readers see
   * all of them or none. Returns the last sequence (a number). Every operation is checked and
   * copied before a sequence is taken: an empty batch throws `RangeError`, a checkpoint, epoch
   * barrier or nested batch `TypeError`, a record above `maxRecordBytes` "RecordTooLarge".
   */
  appendBatch(ops: Iterable<BatchOperationInput>): number {
    const n = normalizeBatch(ops);
    const len = RECORD_HEADER_BYTES + batchBodyLength(n);
    const pos = this.#reserve(len);
    const b = this.#openBatch!;
    const first = this.#nextSeq;
    const last = first + n.length - 1;
    writeRecordHeader(
      b.view,
      pos,
      len,
      RecordType.atomicBatch,
      this.coreId,
      this.#epoch,
      first,
      this.#now(),
      0,
    );
    writeBatchBody(n, b.buf, b.view, pos + RECORD_HEADER_BYTES);
    this.#nextSeq = last + 1;
    this.#commit(b, pos, len, last);
    this.#records += n.length - 1; // #commit counted the record as one
    return last;
  }

  /**
   * Appends records encoded elsewhere (by producers, in shared memory), packed one after another
   * in `src[start..end)`, while their sequences are the next ones: every field is theirs but the
   * epoch, the timestamp and the CRC, which are stamped here so that they follow this core's
   * order. An epoch barrier moves the core to its epoch. Each run of records that fits the open
   * batch is copied with one `set()`.
   *
   * Returns the record boundary it stopped at: `end`, or before a record whose sequence is not
   * next (another producer holds that one), before anything that is not a whole record (a
   * producer ring's wrap marker), or before `maxPendingBytes` would be exceeded. Throws (for
   * example "Backpressure") only when it took nothing: what it did not take stays in `src`.
   * `nowUs`, a wall-clock time read after the records were published, is their timestamp
   * (never going backwards).
   */
  appendFrom(
    src: Uint8Array,
    srcView: DataView,
    start: number,
    end: number,
    nowUs: number,
  ): number {
    if (nowUs > this.#lastUs) this.#lastUs = nowUs;
    const o = this.#o;
    let p = start;
    while (p + RECORD_HEADER_BYTES <= end) {
      const first = srcView.getUint32(p + R_LENGTH, true);
      if (first < RECORD_HEADER_BYTES || first > end - p) break;
      if (recordSequence(srcView, p) !== this.#nextSeq) break;
      let pos: number;
      try {
        pos = this.#reserve(first);
      } catch (e) {
        if (p === start) throw e;
        break; // It throws again on the next call, with nothing taken.
      }
      const b = this.#openBatch!;
      // After #reserve: a new batch's marker took the clock, and records never go before it.
      const us = this.#lastUs;
      // The records after the first that fit this batch without sealing or rotating it.
      const room = Math.min(b.buf.length, o.segmentSizeBytes - b.fileOffset);
      let used = pos + first;
      let q = p + first;
      // An atomic batch takes `count` sequences: the next record's is after all of them.
      let seq = this.#nextSeq + recordSpan(src, srcView, p, src[p + R_TYPE]);
      let pending = this.#pendingBytes + first;
      while (used < o.maxBatchBytes && q + RECORD_HEADER_BYTES <= end) {
        const len = srcView.getUint32(q + R_LENGTH, true);
        if (len < RECORD_HEADER_BYTES || len > end - q || used + len > room) break;
        if (len > o.maxRecordBytes || pending + len > o.maxPendingBytes) break;
        if (recordSequence(srcView, q) !== seq) break;
        const span = recordSpan(src, srcView, q, src[q + R_TYPE]);
        used += len;
        q += len;
        seq += span;
        pending += len;
      }
      this.#copier.copy(src, p, q - p, b.buf, pos);
      const buf = b.buf;
      const v = b.view;
      const salt = this.#salt;
      let r = pos;
      let last = pos;
      while (r < used) {
        const len = v.getUint32(r + R_LENGTH, true);
        if (buf[r + R_TYPE] === RecordType.epochBarrier) {
          const epoch = getU64(v, r + RECORD_HEADER_BYTES);
          if (epoch > this.#epoch) this.#epoch = epoch;
        }
        // Runs of records share their epoch and timestamp: their bytes are worked out once.
        if (us !== this.#stampUs || this.#epoch !== this.#stampEpoch) this.#stamp(us);
        v.setUint32(r + R_EPOCH, this.#stampWords[0], true);
        v.setUint32(r + R_EPOCH + 4, this.#stampWords[1], true);
        v.setUint32(r + R_TIMESTAMP, this.#stampWords[2], true);
        v.setUint32(r + R_TIMESTAMP + 4, this.#stampWords[3], true);
        v.setUint32(r + R_CRC, recordCrc(buf, r, len, salt), true);
        last = r;
        r += len;
      }
      const bytes = used - pos;
      b.used = used;
      b.lastSeq = seq - 1;
      b.lastPos = last;
      b.recordBytes += bytes;
      this.#pendingBytes = pending;
      this.#records += seq - this.#nextSeq;
      this.#bytes += bytes;
      this.#nextSeq = seq;
      if (used >= o.maxBatchBytes) this.#seal(b);
      p = q;
    }
    return p;
  }

  #stamp(us: number): void {
    const v = new DataView(this.#stampWords.buffer);
    setU64(v, 0, this.#epoch);
    setNsFromUs(v, 8, us);
    // Little-endian words read back on any machine.
    for (let i = 0; i < 4; i++) this.#stampWords[i] = v.getUint32(i * 4, true);
    this.#stampUs = us;
    this.#stampEpoch = this.#epoch;
  }

  /** Finds room for a record of `len` bytes: returns its offset in the open batch. */
  #reserve(len: number): number {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#stalled.size !== 0) throw this.#retryStalled();
    if (this.#closed || this.#closing !== undefined) {
      throw new PerCoreWalError(
        "Closed",
        `Cannot append to core ${this.coreId}: the log is closed`,
        {
          coreId: this.coreId,
        },
      );
    }
    if (len > this.#o.maxRecordBytes) {
      throw new PerCoreWalError(
        "RecordTooLarge",
        `Record of ${len} bytes is larger than maxRecordBytes (${this.#o.maxRecordBytes})`,
        { coreId: this.coreId },
      );
    }
    if (this.#pendingBytes > 0 && this.#pendingBytes + len > this.#o.maxPendingBytes) {
      throw new PerCoreWalError(
        "Backpressure",
        `Core ${this.coreId} has ${this.#pendingBytes} bytes waiting for the disk ` +
          `(maxPendingBytes ${this.#o.maxPendingBytes}): await sync() before appending more`,
        { coreId: this.coreId },
      );
    }
    let b = this.#openBatch;
    if (b !== undefined && b.used + len > b.buf.length) {
      // Sealing pads the batch (O_DIRECT): the segment check below sees the padded end.
      this.#seal(b);
      b = undefined;
    }
    const start = b === undefined ? this.#segTail : b.fileOffset + b.used;
    // A new batch starts with its marker.
    const need = b === undefined ? len + BATCH_MARKER_BYTES : len;
    if (start + need > this.#o.segmentSizeBytes) {
      this.#rotate();
      b = undefined;
    }
    if (b === undefined) {
      b = this.#openBatch = this.#newBatch(len);
      if (b.used + len > b.buf.length) throw this.#violated("a batch never grows past its buffer");
    }
    return b.used;
  }

  #commit(b: Batch, pos: number, len: number, seq: number): number {
    b.view.setUint32(pos + R_CRC, recordCrc(b.buf, pos, len, this.#salt), true);
    b.used = pos + len;
    b.lastSeq = seq;
    b.lastPos = pos;
    b.recordBytes += len;
    this.#pendingBytes += len;
    this.#records++;
    this.#bytes += len;
    if (b.used >= this.#o.maxBatchBytes) this.#seal(b);
    return seq;
  }

  /** Wall-clock microseconds, never going backwards. */
  #now(): number {
    const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
    if (us > this.#lastUs) this.#lastUs = us;
    return this.#lastUs;
  }

  // -------------------------------------------------------------------------------------------
  // Batches

  #newBatch(len: number): Batch {
    this.#seg.batches++;
    if (this.#epoch < this.#batchEpoch) throw this.#violated("a core's epoch never decreases");
    this.#batchEpoch = this.#epoch;
    // Every batch starts with a marker; what it claims is set at submission (#pump).
    return openBatch(
      this.#buffers,
      len,
      this.#seg,
      this.#segTail,
      this.coreId,
      this.#epoch,
      this.#nextSeq,
      this.#now(),
    );
  }

  /** Closes the open batch to appends and queues it for submission. */
  #seal(b: Batch): void {
    if (this.#openBatch === b) this.#openBatch = undefined;
    const end = Math.ceil(b.used / this.#align) * this.#align;
    // The padding too: a write of less than the batch would leave a hole before the next one.
    if (end > b.buf.length) throw this.#violated("a batch never grows past its buffer");
    if (end > b.used) padBatch(b, end);
    if (b.seg === this.#seg) {
      this.#segTail = b.fileOffset + b.used;
      this.#layOutNext();
    }
    this.#sealedBatches++;
    this.#pipeline.enqueue(b);
  }

  /**
   * Once the current segment is half written, the next one (prepared with its first window only)
   * is laid out further in the background, one step ({@linkcode nextSegmentWindow}): its layout
   * then changes another file's metadata than the one the data's fdatasyncs commit, and the
   * writer finds it laid out well ahead when it rotates. The rest of a segment is laid out ahead
   * of its writer in place ({@linkcode SegmentPreparer.keepAhead}).
   */
  #layOutNext(): void {
    const next = this.#next;
    const size = this.#o.segmentSizeBytes;
    if (next === undefined || this.#segTail * 2 < size) return;
    this.#segments.layOutTo(next, nextSegmentWindow(size));
  }

  /** After a submission: seals the open batch if a flush waits for a free slot. */
  #flushIfWanted(): void {
    const open = this.#openBatch;
    if (this.#flushWanted && open !== undefined && this.#pipeline.hasFreeSlot) {
      this.#flushWanted = false;
      this.#seal(open);
    }
  }

  /** Fails the core with an `Internal` error naming `invariant`, and returns that error. */
  #violated(invariant: string): PerCoreWalError {
    return this.#pipeline.violated(invariant);
  }

  // -------------------------------------------------------------------------------------------
  // Durability

  /**
   * Resolves when every record appended before the call is durable; rejects if it cannot be.
   * `options.signal` stops the wait (it rejects with the signal's reason; the records still
   * become durable).
   */
  sync(options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = waitSignal(options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#waitFor(this.#nextSeq - 1, signal);
  }

  /**
   * Resolves when record `sequence` (and every one before it) is durable. `options.signal`
   * stops the wait (it rejects with the signal's reason; the record still becomes durable).
   */
  waitDurable(sequence: number, options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = durableWaitSignal(sequence, options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (sequence >= this.#nextSeq) {
      return Promise.reject(
        new RangeError(`sequence ${sequence} was not appended yet (last is ${this.#nextSeq - 1})`),
      );
    }
    return this.#waitFor(sequence, signal);
  }

  #waitFor(seq: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (seq <= this.#pipeline.durableSequence) return Promise.resolve();
    if (this.#stalled.size !== 0) return Promise.reject(this.#retryStalled());
    if (this.#closed) {
      return Promise.reject(new PerCoreWalError("Closed", `Core ${this.coreId}'s log is closed`));
    }
    let waiter!: object;
    const wait = new Promise<void>((resolve, reject) => {
      waiter = this.#pipeline.waiters.add(seq, resolve, reject);
      const open = this.#openBatch;
      if (open !== undefined && seq >= open.firstSeq) this.#requestFlush();
    });
    // An aborted wait leaves the flush it asked for: its records still become durable.
    return raceSignal(wait, signal, () => this.#pipeline.waiters.remove(waiter));
  }

  #requestFlush(): void {
    if (this.#o.syncDelayMs > 0) {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#flushNow();
      }, this.#o.syncDelayMs);
      return;
    }
    this.#flushNow();
  }

  /** Seals the open batch now if a slot is free, else as soon as one frees (group commit). */
  #flushNow(): void {
    const open = this.#openBatch;
    if (open === undefined || this.#failed !== undefined) return;
    if (this.#pipeline.hasFreeSlot) this.#seal(open);
    else this.#flushWanted = true;
  }

  // -------------------------------------------------------------------------------------------
  // Segments

  #rotate(): void {
    // Segment N + 1's file is created only once N's preparation is durable (segment_prep.ts):
    // until then its batches wait, as they wait for its own preparation.
    const next = this.#next ?? this.#prepare(this.#seg.index + 1, false, this.#seg);
    this.#next = undefined;
    if (next.error !== undefined) {
      this.#segments.discard(next);
      throw next.error;
    }
    if (this.#openBatch !== undefined) this.#seal(this.#openBatch);
    // The new segment's header says it starts at the next sequence: every record before it
    // must be in a batch of an earlier segment (queued, or already acknowledged).
    if (this.#pipeline.lastSealedSequence !== this.#nextSeq - 1) {
      throw this.#violated("sequences are contiguous across a rotation");
    }
    const old = this.#seg;
    old.sealed = true;
    if (old.batches === 0) this.#segments.closeSegment(old);
    this.#activate(next);
    // Segment N + 1 is created only once N's preparation is durable (else in #prepared): an
    // empty segment before a later one then always means damage (FORMAT.md, section 8).
    if (next.ready) this.#next = this.#prepare(next.index + 1, true);
  }

  /** Makes a prepared segment the current one; its header is written with its first batch. */
  #activate(seg: Segment): void {
    this.#segments.activate(seg, this.#nextSeq, this.#epoch, this.#now());
    this.#seg = seg;
    this.#salt = saltState(seg.salt);
    this.#segTail = SEGMENT_DATA_OFFSET;
  }

  /**
   * A background preparation settled. One that failed before the log rotated into its segment
   * is kept there and refuses the append that rotates ({@linkcode #rotate}). One that failed
   * after (the segment is current, or was, and holds batches: none of them submitted, #pump waits
   * for ready) refuses only appends and syncs too: the segment stalls, the waits it holds up are
   * rejected with the error, and the next append or sync retries the preparation in place (same
   * salt, same first sequence, so the waiting batches stay valid). The core is not failed.
   */
  #prepared(seg: Segment): void {
    if (seg.error !== undefined && seg.salt !== 0) {
      this.#stalled.add(seg);
      // A failed layout of more of a segment in use holds back only the batches not submitted.
      const from = seg.ready ? this.#pipeline.firstWaitingSequence(seg) : seg.firstSequence;
      this.#pipeline.waiters.rejectFrom(from, seg.error);
    }
    if (
      seg === this.#seg && seg.ready && this.#next === undefined && !this.#closed &&
      this.#failed === undefined
    ) {
      this.#next = this.#prepare(seg.index + 1, true);
    }
    this.#pipeline.pump();
  }

  /** Starts preparing the stalled segments again; returns the error that stalled the first. */
  #retryStalled(): PerCoreWalError {
    let first: PerCoreWalError | undefined;
    for (const seg of [...this.#stalled]) {
      first ??= seg.error;
      this.#segments.retry(seg);
      if (seg.error === undefined) this.#stalled.delete(seg);
    }
    return first ?? new PerCoreWalError("Io", `Core ${this.coreId}'s segment preparation failed`);
  }

  // Segment preparation lives in segment_prep.ts; the engine asks it with its batch counters.

  #prepare(index: number, quiet = false, after?: Segment): Segment {
    return this.#segments.prepare(index, quiet, this.#sealedBatches, this.#bytes, after);
  }

  /** Reads the existing segments of this core and continues after the last valid record. */
  async #recover(onEvent: WalEventHandler | undefined): Promise<void> {
    const found = await recoverCoreSegments(this.#config, this.coreId, onEvent);
    const last = found.last;
    this.#epoch = Math.max(this.#epoch, found.maxEpoch);
    const lastSeq = found.lastSequence;
    const lastTsNs = found.lastTimestampNs;
    let nextIndex = found.nextIndex;
    this.#nextSeq = lastSeq + 1;
    this.#pipeline.startAt(lastSeq, {
      segment: 0,
      offset: SEGMENT_DATA_OFFSET,
      sequence: lastSeq,
    });
    this.#lastUs = Number(lastTsNs / 1000n);
    if (last !== undefined) {
      const seg = this.#segments.adopt(
        last.index,
        last.path,
        last.firstSequence,
        last.salt,
        last.validEnd,
      );
      const file = seg.file;
      // A version 1 segment is never continued: its readers would refuse batch markers.
      const resumable = last.clean && last.version === FORMAT_VERSION &&
        last.size === this.#o.segmentSizeBytes &&
        last.validEnd % this.#align === 0 && last.validEnd < last.size;
      if (!resumable && last.validEnd < last.size) {
        // A torn tail, or an end O_DIRECT cannot continue at: cut the file after the last
        // valid record, and continue in a new segment.
        this.#io.truncate(file, last.validEnd);
        if (!last.clean) {
          emitEvent(onEvent, {
            type: "tornTailCut",
            coreId: this.coreId,
            segment: last.index,
            path: last.path,
            offset: last.validEnd,
            bytes: last.size - last.validEnd,
          });
        }
      }
      // What survived a crash may still be only in the page cache: make it durable first.
      await this.#io.writeParts(file, [], true, "prepare");
      this.#pipeline.startAt(lastSeq, {
        segment: last.index,
        offset: last.validEnd,
        sequence: lastSeq,
      });
      if (resumable) {
        this.#seg = seg;
        this.#salt = saltState(seg.salt);
        this.#segTail = last.validEnd;
      } else {
        this.#segments.closeSegment(seg);
        nextIndex = last.index + 1;
      }
    }
    if (this.#seg === undefined) {
      const seg = this.#prepare(nextIndex);
      await seg.prepared;
      if (seg.error !== undefined) {
        this.#segments.discard(seg);
        throw seg.error;
      }
      this.#activate(seg);
      nextIndex++;
    }
    this.#next = this.#prepare(this.#seg.index + 1, true);
  }

  // -------------------------------------------------------------------------------------------
  // State

  /** The backend writing this core's segments. */
  get backend(): BackendKind {
    return this.#io.kind;
  }

  /** The write mode in use. */
  get writeMode(): WriteModeInUse {
    return this.#mode;
  }

  /** The current epoch of this core. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Moves this core to a later epoch (epochs never decrease within a core). */
  setEpoch(epoch: number): void {
    safeInteger(epoch, "epoch");
    if (epoch < this.#epoch) {
      throw new RangeError(`epoch ${epoch} is before core ${this.coreId}'s epoch ${this.#epoch}`);
    }
    this.#epoch = epoch;
  }

  /**
   * Handles I/O completions already there (a busy caller's shortcut: they would otherwise be
   * noticed when its event loop next runs).
   */
  pollCompletions(): void {
    this.#io.pollCompletions?.();
  }

  /**
   * Passes `IoBackend.waitIdle` on: blocks until a completion, a write to `bell` or the
   * timeout (bounded by {@linkcode waitBound}).
   */
  waitIdle(bell: number, timeoutMs: number): "woken" | "timeout" | "unavailable" {
    if (this.#io.waitIdle === undefined) return "unavailable";
    return this.#io.waitIdle(bell, this.waitBound(timeoutMs));
  }

  /**
   * The longest an idle owner may block its thread out of `timeoutMs`: 1 ms while a
   * `syncDelayMs` flush is due (its timer needs the owner's event loop).
   */
  waitBound(timeoutMs: number): number {
    return this.#timer !== undefined ? Math.min(timeoutMs, 1) : timeoutMs;
  }

  /** Whether a segment is being prepared (a chain of promises that may need no I/O to go on). */
  get preparing(): boolean {
    return this.#segments.preparing;
  }

  /** Whether `waitIdle` can block on the backend's completions. */
  get canWaitIdle(): boolean {
    return this.#io.waitIdle !== undefined;
  }

  /** Passes `IoBackend.setOwnerIdle` on (see `CoreLogOptions.lazyCompletionWait`). */
  setOwnerIdle(idle: boolean): void {
    this.#io.setOwnerIdle?.(idle);
  }

  /** Sequence the next record appended will get (`sequence` plus one). */
  get nextSequence(): number {
    return this.#nextSeq;
  }

  /** Sequence of the last record appended (0 when none). */
  get sequence(): number {
    return this.#nextSeq - 1;
  }

  /** Sequence of the last durable record (0 when none). */
  get durableSequence(): number {
    return this.#pipeline.durableSequence;
  }

  /** Where the next record will be appended. */
  get position(): WalPosition {
    const b = this.#openBatch;
    return {
      segment: this.#seg.index,
      offset: b === undefined ? this.#segTail : b.fileOffset + b.used,
      sequence: this.#nextSeq - 1,
    };
  }

  /** The end of the durable records. */
  get syncedPosition(): WalPosition {
    return { ...this.#pipeline.durablePosition };
  }

  /** The error that stopped this core, if one did. */
  get failure(): PerCoreWalError | undefined {
    return this.#failed;
  }

  /** The batch latencies as cumulative buckets and a sum (for Prometheus-style histograms). */
  syncLatencyBuckets(): LatencyBuckets {
    return this.#pipeline.latency.buckets();
  }

  /** Counters and latencies (`withLatency` false skips computing the percentiles). */
  metrics(withLatency = true): CoreLogMetrics {
    return {
      coreId: this.coreId,
      backend: this.#io.kind,
      writeMode: this.#mode,
      recordsAppended: this.#records,
      bytesAppended: this.#bytes,
      batches: this.#pipeline.batches,
      fdatasyncs: this.#pipeline.syncs,
      syncLatency: withLatency
        ? this.#pipeline.latency.summary()
        : { count: 0, p50Us: 0, p99Us: 0, maxUs: 0 },
      inFlightBatches: this.#pipeline.inFlight,
      pendingBytes: this.#pendingBytes,
    };
  }

  /**
   * Makes everything appended durable, then closes the files (and the backend it created).
   * Appends nothing of its own. Idempotent. Rejects with the core's failure if it failed (the
   * files are closed all the same).
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      let err: unknown;
      if (this.#failed === undefined) {
        await this.#waitFor(this.#nextSeq - 1).catch((e) => err = e);
      }
      this.#closed = true;
      await this.#release();
      // Records that could not be made durable are reported, not silently dropped.
      err ??= this.#failed;
      if (err !== undefined) throw err;
    })();
    return this.#closing;
  }

  /** Waits for what is in flight, then frees files and memory. */
  async #release(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#pipeline.inFlight > 0) await this.#pipeline.drained();
    await this.#segments.settle();
    for (const seg of [...this.#segments.openSegments]) this.#segments.closeSegment(seg);
    this.#pipeline.freeQueued();
    if (this.#openBatch !== undefined) this.#buffers.free(this.#openBatch);
    this.#openBatch = undefined;
    this.#buffers.drain();
    this.#segments.release();
    const err = this.#failed ??
      new PerCoreWalError("Closed", `Core ${this.coreId}'s log is closed`);
    this.#pipeline.waiters.rejectAll(err);
    if (this.#ownsIo) await this.#io.close();
  }

  /** Closes the log. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
