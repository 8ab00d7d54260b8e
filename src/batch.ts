/**
 * The engine's batches and their buffers: a batch is one write of consecutive records of one
 * segment, opened by its marker, sealed, submitted and acknowledged in order by `core_log.ts`.
 * This module creates them, pads them for O_DIRECT and recycles their buffers; it decides nothing
 * about when.
 *
 * @module
 */

import {
  BATCH_MARKER_BYTES,
  R_CRC,
  R_LENGTH,
  R_PAD,
  recordCrc,
  saltState,
  writeBatchMarker,
} from "./format.ts";
import type { IoBackend } from "./io/backend.ts";
import type { Segment } from "./segment_prep.ts";

/** Where a batch is on its way to the disk. */
export const BatchState = {
  /** Takes appends. */
  Open: 0,
  /** Sealed, waiting for a slot in flight. */
  Queued: 1,
  /** Written (and fdatasynced) by the backend. */
  Submitted: 2,
  /** Durable, waiting for the batches before it. */
  Done: 3,
} as const;

/** Where a batch is on its way to the disk. */
export type BatchState = typeof BatchState[keyof typeof BatchState];

/** One batch: its buffer, where it goes, and the records it holds. */
export interface Batch {
  buf: Uint8Array;
  view: DataView;
  used: number;
  fileOffset: number;
  seg: Segment;
  firstSeq: number;
  lastSeq: number;
  lastPos: number;
  recordBytes: number;
  state: BatchState;
  /** Whether its buffer is of the pooled size (it goes back to the pool). */
  pooled: boolean;
  /** The segment header written in the same chain, when this batch is the segment's first. */
  header: Uint8Array | undefined;
}

/**
 * The batch buffers of one core: buffers of `maxBatchBytes` (rounded up to whole 4 KiB blocks)
 * are pooled, a few more than can be in flight; a batch for a larger record gets its own.
 */
export class BatchBuffers {
  /** The size of a pooled buffer. */
  readonly batchSize: number;
  readonly #io: IoBackend;
  readonly #keep: number;
  readonly #pool: Uint8Array[] = [];

  /** Buffers from `io`, pooled up to `maxInFlightBatches + 2`. */
  constructor(io: IoBackend, maxBatchBytes: number, maxInFlightBatches: number) {
    this.#io = io;
    this.batchSize = Math.ceil(maxBatchBytes / 4096) * 4096;
    this.#keep = maxInFlightBatches + 2;
  }

  /** A buffer for a batch of `size` bytes (pooled when it fits `batchSize`). */
  take(size: number): Uint8Array {
    return size <= this.batchSize
      ? (this.#pool.pop() ?? this.#io.allocBuffer(this.batchSize))
      : this.#io.allocBuffer(Math.ceil(size / 4096) * 4096);
  }

  /** Gives an acknowledged batch's buffers back. */
  release(b: Batch): void {
    if (b.header !== undefined) this.#io.freeBuffer(b.header);
    b.header = undefined;
    if (b.pooled && this.#pool.length < this.#keep) this.#pool.push(b.buf);
    else this.#io.freeBuffer(b.buf);
  }

  /** Frees a batch's buffers (at close: nothing goes back to the pool). */
  free(b: Batch): void {
    if (b.header !== undefined) this.#io.freeBuffer(b.header);
    b.header = undefined;
    this.#io.freeBuffer(b.buf);
  }

  /** Frees the pooled buffers. */
  drain(): void {
    for (const buf of this.#pool.splice(0)) this.#io.freeBuffer(buf);
  }
}

/**
 * Opens a batch for a first record of `len` bytes at `fileOffset` of `seg`, its marker written
 * (what the marker claims is set at submission).
 */
export function openBatch(
  buffers: BatchBuffers,
  len: number,
  seg: Segment,
  fileOffset: number,
  coreId: number,
  epoch: number,
  firstSeq: number,
  nowUs: number,
): Batch {
  const size = len + BATCH_MARKER_BYTES;
  const buf = buffers.take(size);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  writeBatchMarker(view, 0, coreId, epoch, firstSeq, nowUs);
  return {
    buf,
    view,
    used: BATCH_MARKER_BYTES,
    fileOffset,
    seg,
    firstSeq,
    lastSeq: firstSeq - 1,
    lastPos: 0,
    recordBytes: 0,
    state: BatchState.Open,
    pooled: size <= buffers.batchSize,
    header: undefined,
  };
}

/**
 * Pads a batch to `end` (O_DIRECT writes whole blocks): its last record carries the padding,
 * zeros covered by its CRC, so that a reader finds no hole before the next batch.
 */
export function padBatch(b: Batch, end: number): void {
  const p = b.lastPos;
  const length = end - p;
  b.buf.fill(0, b.used, end);
  b.view.setUint32(p + R_LENGTH, length, true);
  b.view.setUint16(p + R_PAD, end - b.used, true);
  b.view.setUint32(p + R_CRC, recordCrc(b.buf, p, length, saltState(b.seg.salt)), true);
  b.used = end;
}
