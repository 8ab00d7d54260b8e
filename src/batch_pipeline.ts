/**
 * The way of one core's sealed batches to the disk: submitted in order, up to
 * `maxInFlightBatches` at a time, and acknowledged strictly in order, which moves the durable
 * sequence and resolves the waits for it. A failed write or fdatasync fails the core. The engine
 * (`core_log.ts`) fills and seals the batches; this module never sees a record.
 *
 * @module
 */

import { invariantError } from "./assert.ts";
import { type Batch, type BatchBuffers, BatchState } from "./batch.ts";
import type { CoreLogOptions } from "./core_log_options.ts";
import { DurableWaiters } from "./durable_waiters.ts";
import { PerCoreWalError } from "./errors.ts";
import { saltState, sealBatchMarker, SEGMENT_DATA_OFFSET } from "./format.ts";
import { LatencyHistogram } from "./histogram.ts";
import type { IoBackend, WriteSync } from "./io/backend.ts";
import type { Segment, SegmentPreparer } from "./segment_prep.ts";
import type { WalPosition, WriteModeInUse } from "./types.ts";

/**
 * The largest batch that `"direct"` mode writes as durable writes (`RWF_DSYNC`) instead of writes
 * and a linked fdatasync. One request instead of two: the fdatasync is issued only once the
 * writes have completed (the Worker is woken for that, then again for the fdatasync), and goes
 * through an io_uring worker thread. Measured (docs/PERFORMANCE.md, "Durable writes"): an
 * awaited record and a group commit gain from it; batches of a MiB lose bandwidth with it.
 */
export const DSYNC_WRITE_MAX_BYTES = 128 * 1024;

/** What the pipeline tells the engine that owns it. */
export interface PipelineHooks {
  /** A batch is durable: its record bytes no longer wait for the disk. */
  acknowledged(recordBytes: number): void;
  /** Submission went as far as it could: a slot may be free for a flush the engine wants. */
  pumped(): void;
  /** The core failed (called once, before the waits are rejected). */
  failed(error: PerCoreWalError): void;
}

/** The submission queue and the acknowledgements of one core's batches. */
export class BatchPipeline {
  /** Waits for a sequence to become durable. */
  readonly waiters: DurableWaiters = new DurableWaiters();
  readonly #coreId: number;
  readonly #io: IoBackend;
  readonly #mode: WriteModeInUse;
  readonly #maxInFlight: number;
  readonly #buffers: BatchBuffers;
  readonly #segments: SegmentPreparer;
  readonly #hooks: PipelineHooks;
  readonly #onDurable: CoreLogOptions["onDurable"];
  readonly #onFail: CoreLogOptions["onFail"];
  /** Sealed batches not yet acknowledged, in file order. */
  readonly #queue: Batch[] = [];
  readonly #latency = new LatencyHistogram();
  #inflight = 0;
  /** Sealed batches not submitted yet (waiting for a slot, or for their segment's layout). */
  #waiting = 0;
  #durableSeq = 0;
  #durablePos: WalPosition = { segment: 0, offset: SEGMENT_DATA_OFFSET, sequence: 0 };
  #failed: PerCoreWalError | undefined;
  #idle: (() => void) | undefined;
  #batches = 0;
  #syncs = 0;

  /** A pipeline for core `coreId`'s batches, written through `io` in `mode`. */
  constructor(
    coreId: number,
    io: IoBackend,
    mode: WriteModeInUse,
    maxInFlightBatches: number,
    buffers: BatchBuffers,
    segments: SegmentPreparer,
    hooks: PipelineHooks,
    options: CoreLogOptions,
  ) {
    this.#coreId = coreId;
    this.#io = io;
    this.#mode = mode;
    this.#maxInFlight = maxInFlightBatches;
    this.#buffers = buffers;
    this.#segments = segments;
    this.#hooks = hooks;
    this.#onDurable = options.onDurable;
    this.#onFail = options.onFail;
  }

  /** Sets where the durable records end (at open, after recovery). */
  startAt(durableSeq: number, position: WalPosition): void {
    this.#durableSeq = durableSeq;
    this.#durablePos = position;
  }

  /** Sequence of the last durable record (0 when none). */
  get durableSequence(): number {
    return this.#durableSeq;
  }

  /** The end of the durable records. */
  get durablePosition(): WalPosition {
    return this.#durablePos;
  }

  /** The last sequence in a sealed batch (queued or acknowledged). */
  get lastSealedSequence(): number {
    const q = this.#queue;
    return q.length > 0 ? q[q.length - 1].lastSeq : this.#durableSeq;
  }

  /**
   * The first sequence of `seg`'s batches not yet submitted, or the one after the last sealed
   * batch when none waits.
   */
  firstWaitingSequence(seg: Segment): number {
    for (const b of this.#queue) {
      if (b.seg === seg && b.state === BatchState.Queued) return b.firstSeq;
    }
    return this.lastSealedSequence + 1;
  }

  /** Whether another batch may be submitted now. */
  get hasFreeSlot(): boolean {
    // Batches held back by their segment's layout count too: a flush that sealed a batch per
    // sync() while they wait would split a group commit into one batch per caller.
    return this.#inflight + this.#waiting < this.#maxInFlight;
  }

  /** Batches submitted and not yet durable. */
  get inFlight(): number {
    return this.#inflight;
  }

  /** Batches submitted since open. */
  get batches(): number {
    return this.#batches;
  }

  /** fdatasyncs submitted since open (a batch written with durable writes has none). */
  get syncs(): number {
    return this.#syncs;
  }

  /** Time from a batch's submission to its durability. */
  get latency(): LatencyHistogram {
    return this.#latency;
  }

  /** Queues a sealed batch and submits what can be. */
  enqueue(b: Batch): void {
    b.state = BatchState.Queued;
    this.#waiting++;
    this.#queue.push(b);
    this.pump();
  }

  /** Submits queued batches in order, up to `maxInFlightBatches`. */
  pump(): void {
    if (this.#failed !== undefined) return;
    for (const b of this.#queue) {
      if (b.state !== BatchState.Queued) continue;
      if (this.#inflight >= this.#maxInFlight) break;
      const seg = b.seg;
      // A segment whose preparation failed is not ready either: its batches wait for a retry.
      if (!seg.ready) break;
      // Nothing is written past the laid-out range; more of it is laid out ahead of the writer.
      const end = b.fileOffset + b.used;
      this.#segments.keepAhead(seg, end);
      if (end > seg.laidOut) break;
      // The marker claims what is acknowledged now: after a crash, a hole before this batch
      // that lies at or before that sequence is lost acknowledged data, any other hole is a
      // crash tail (docs/FORMAT.md, section 8).
      sealBatchMarker(b.buf, b.view, 0, this.#durableSeq, saltState(seg.salt));
      const parts = [{ data: b.buf.subarray(0, b.used), offset: b.fileOffset }];
      if (seg.headerBlock !== undefined) {
        // The header goes in the same chain as the segment's first records, before them.
        b.header = seg.headerBlock;
        seg.headerBlock = undefined;
        parts.unshift({ data: b.header, offset: 0 });
      }
      b.state = BatchState.Submitted;
      this.#waiting--;
      this.#inflight++;
      this.#batches++;
      const sync = this.#durability(b.used);
      if (sync === true) this.#syncs++;
      const t0 = performance.now();
      this.#io.writeParts(seg.file, parts, sync, "data").then(
        () => this.#done(b, t0),
        (e) => this.#settle(e),
      );
    }
    this.#hooks.pumped();
  }

  /**
   * How a batch of `bytes` is made durable: by the file (opened `O_DSYNC`), by its writes
   * (`RWF_DSYNC`, small batches in `"direct"` mode), or by an fdatasync after them.
   */
  #durability(bytes: number): WriteSync {
    if (this.#mode === "dsync") return false;
    return this.#mode === "direct" && bytes <= DSYNC_WRITE_MAX_BYTES ? "dsync" : true;
  }

  #done(b: Batch, t0: number): void {
    if (this.#failed !== undefined) {
      // After a failed write or fdatasync nothing that completes is trusted: Linux reports a
      // writeback error to one fdatasync only, which may not be the one covering the pages.
      this.#settle();
      return;
    }
    this.#latency.record((performance.now() - t0) * 1000);
    b.state = BatchState.Done;
    const q = this.#queue;
    while (q.length > 0 && q[0].state === BatchState.Done) {
      const d = q.shift()!;
      if (d.lastSeq >= d.firstSeq) {
        // Each batch continues where the last acknowledged one ended; the durable sequence
        // only moves forward (waiters resolve by it, readers trust it).
        if (d.firstSeq !== this.#durableSeq + 1) {
          this.violated("batches are acknowledged in order");
          return this.#settle();
        }
        if (d.lastSeq < this.#durableSeq) {
          this.violated("the durable sequence never goes back");
          return this.#settle();
        }
        this.#durableSeq = d.lastSeq;
        this.#durablePos = {
          segment: d.seg.index,
          offset: d.fileOffset + d.used,
          sequence: d.lastSeq,
        };
      }
      this.#hooks.acknowledged(d.recordBytes);
      this.#release(d);
    }
    this.#onDurable?.(this.#durableSeq, this.#durablePos);
    this.waiters.resolveThrough(this.#durableSeq);
    this.#settle();
  }

  /** One submitted batch finished, well or not. */
  #settle(err?: unknown): void {
    if (--this.#inflight < 0) {
      this.#inflight = 0;
      this.violated("the in-flight batch count is never negative");
    }
    if (err !== undefined) this.fail(err);
    else this.pump();
    if (this.#inflight === 0 && this.#idle !== undefined) this.#idle();
  }

  #release(b: Batch): void {
    this.#buffers.release(b);
    const seg = b.seg;
    seg.batches--;
    if (seg.sealed && seg.batches === 0) this.#segments.closeSegment(seg);
  }

  /** Fails the core with an `Internal` error naming `invariant`, and returns that error. */
  violated(invariant: string): PerCoreWalError {
    const error = invariantError(invariant, { coreId: this.#coreId });
    this.fail(error);
    return error;
  }

  /** Fails the core (the first failure wins): every wait is rejected with it. */
  fail(err: unknown): void {
    if (this.#failed !== undefined) return;
    const failed = err instanceof PerCoreWalError
      ? err
      : new PerCoreWalError("Io", `Core ${this.#coreId} failed: ${err}`, {
        coreId: this.#coreId,
        cause: err,
      });
    this.#failed = failed;
    this.#hooks.failed(failed);
    this.waiters.rejectAll(failed);
    this.#onFail?.(failed);
  }

  /** Resolves when nothing is in flight. */
  drained(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idle = resolve);
  }

  /** Frees the buffers of the batches still queued (at close). */
  freeQueued(): void {
    for (const b of this.#queue.splice(0)) this.#buffers.free(b);
    this.#waiting = 0;
  }
}
