/**
 * `CoreWalWriter`: the producer side of one core. It encodes records straight into shared
 * memory and claims their sequences with one atomic add; the core's Worker stamps epoch,
 * timestamp and CRC in sequence order and writes them.
 *
 * @module
 */

import {
  durableWaitSignal,
  raceSignal,
  signalOf,
  throwIfAborted,
  type WaitOptions,
  waitSignal,
} from "./abort.ts";
import { checkOptionKeys } from "./option_keys.ts";
import { PerCoreWalError } from "./errors.ts";
import {
  batchBodyLength,
  type BatchOperationInput,
  bodyLength,
  normalizeBatch,
  normalizeOperation,
  PUT_OVERHEAD_BYTES,
  R_LENGTH,
  R_PAD,
  R_SEQUENCE,
  R_TYPE,
  RECORD_HEADER_BYTES,
  RecordType,
  toBytes,
  toKey,
  writeBatchBody,
  writeBody,
} from "./format.ts";
import { BigSlot, Control, CoreState, keepAlive, ProducerRing, raiseTo } from "./shared.ts";
import { safeInteger } from "./numbers.ts";
import { SharedCopier } from "./shared_copy.ts";
import {
  checkpointOperation,
  commitOperation,
  deleteOperation,
  epochBarrierOperation,
} from "./operations.ts";
import type {
  Bytes,
  CommitOffsets,
  WalOperation,
  WalOperationInput,
  WalPosition,
} from "./types.ts";

/**
 * What a Worker of the application needs to append to a core: pass it with `postMessage`
 * and call {@linkcode CoreWalWriter.attach} there. One handle serves one thread.
 *
 * @example
 * ```ts
 * import { CoreWalWriter, PerCoreWalConfig, PerCoreWalManager, type WriterHandle } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const handle: WriterHandle = manager.writerHandle(1);
 * // Send it to an application Worker (postMessage), which attaches it once:
 * const writer = CoreWalWriter.attach(handle);
 * await writer.waitDurable(writer.appendPut("k", "v"));
 * writer.close();
 * ```
 */
export interface WriterHandle {
  /** The core. */
  readonly coreId: number;
  /** The core's control block. */
  readonly control: SharedArrayBuffer;
  /** This producer's ring. */
  readonly ring: SharedArrayBuffer;
  /** The global epoch. */
  readonly epoch: SharedArrayBuffer;
  /** The configured record limit. */
  readonly maxRecordBytes: number;
}

/**
 * Copies `src` into `dst` at `at`: a loop for the short keys and values most records carry,
 * where `set()`'s fixed cost is most of the copy.
 */
function _copy(dst: Uint8Array, src: Uint8Array, at: number): void {
  const n = src.length;
  if (n > 32) {
    // Large values at an odd offset go through a staging copy (see SharedCopier).
    if (n >= 256) _copier.copy(src, 0, n, dst, at);
    else dst.set(src, at);
    return;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[i];
}
const _copier = new SharedCopier();

/** A durability wait of a producer thread. */
interface Waiter {
  seq: bigint;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** How long a blocking append waits for space before it throws "Backpressure". */
const BLOCK_TIMEOUT_MS = 30_000;

/**
 * Options of the `...Async` appends.
 *
 * @example
 * ```ts ignore
 * // Fail fast (a server answers 503) instead of waiting for the core's Worker.
 * const seq = await writer.appendPutAsync("k", "v", { timeoutMs: 0 });
 * ```
 */
export interface AppendWaitOptions {
  /**
   * How long to wait for space in the shared buffer before throwing `PerCoreWalError`
   * "Backpressure" (nothing is appended then). `0` never waits. Default 30 000.
   */
  timeoutMs?: number;
  /**
   * Stops the wait for space: the append rejects with `signal.reason` and appends nothing
   * (an already aborted signal rejects at once).
   */
  signal?: AbortSignal;
}

function _timeout(options: AppendWaitOptions | undefined): number {
  checkOptionKeys(options, "AppendWaitOptions");
  const t = options?.timeoutMs ?? BLOCK_TIMEOUT_MS;
  if (typeof t !== "number" || !(t >= 0)) {
    throw new RangeError(`timeoutMs must be a number ≥ 0, got ${String(t)}`);
  }
  return t;
}

/**
 * Whether this thread may block in `Atomics.wait` for space. Deno allows it everywhere, but the
 * main thread runs the application's event loop (its servers, its timers): only Workers block.
 */
const canBlock = (): boolean =>
  typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";

/**
 * Appends to one core's log from the thread that owns it. Get it from `manager.writer(coreId)`
 * on the thread that opened the manager, or with `CoreWalWriter.attach(manager.writerHandle(i))`
 * in another Worker.
 *
 * Appends return the record's sequence at once. When the core's shared buffer is full, an
 * append waits for space in a Worker (up to 30 s) and throws `PerCoreWalError` "Backpressure"
 * on the main thread, which must not block; the `...Async` variants wait for space instead.
 *
 * @example
 * ```ts ignore
 * import { PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const w = manager.writer(1);
 * const seq = w.appendPut("key", "value");
 * await w.waitDurable(seq);
 * ```
 */
export class CoreWalWriter {
  /** The core this writer appends to. */
  readonly coreId: number;
  readonly #ctl: Control;
  readonly #ring: ProducerRing;
  readonly #epoch: BigInt64Array;
  readonly #maxRecord: number;
  /**
   * Durability waits of this thread, by sequence (mostly appended in order). Kept as bigints:
   * they are compared with the core's 64-bit atomic durable slot.
   */
  readonly #waiters: Waiter[] = [];
  #watching = false;
  #detached = false;

  /** Use `manager.writer()` or {@linkcode CoreWalWriter.attach}. */
  constructor(handle: WriterHandle, claim = true) {
    this.coreId = handle.coreId;
    this.#ctl = new Control(handle.control);
    this.#ring = new ProducerRing(handle.ring);
    this.#epoch = new BigInt64Array(handle.epoch);
    this.#maxRecord = handle.maxRecordBytes;
    if (claim && !this.#ring.claim()) {
      throw new PerCoreWalError(
        "Locked",
        `This writer handle of core ${handle.coreId} is already attached in another thread: ` +
          `ask the manager for one handle per thread`,
        { coreId: handle.coreId },
      );
    }
  }

  /** A writer for a handle passed from the manager's thread; one handle serves one thread. */
  static attach(handle: WriterHandle): CoreWalWriter {
    if (
      handle === null || typeof handle !== "object" || !(handle.ring instanceof SharedArrayBuffer)
    ) {
      throw new TypeError("attach() takes a handle from manager.writerHandle(coreId)");
    }
    return new CoreWalWriter(handle);
  }

  // -------------------------------------------------------------------------------------------
  // Appends

  /** Appends a `put`; returns its sequence. */
  appendPut(key: Bytes, value: Bytes): number {
    const k = toKey(key);
    const v = toBytes(value, "value");
    const len = PUT_OVERHEAD_BYTES + k.length + v.length;
    const pos = this.#reserve(len);
    const ring = this.#ring;
    const seq = this.#header(pos, len, RecordType.put);
    const data = ring.data;
    ring.view.setUint16(pos + RECORD_HEADER_BYTES, k.length, true);
    _copy(data, k, pos + PUT_OVERHEAD_BYTES);
    _copy(data, v, pos + PUT_OVERHEAD_BYTES + k.length);
    this.#publish(len);
    return seq;
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
   * Appends an epoch barrier: from it on, this core's records carry at least `epoch` (default:
   * the manager's current epoch). Returns its sequence.
   */
  appendEpochBarrier(epoch?: number): number {
    const op = epochBarrierOperation(epoch, Number(Atomics.load(this.#epoch, 0)));
    const sequence = this.#append(op);
    if (op.type === "epochBarrier") {
      // The global epoch is never behind a core's: raise it to an explicit barrier's epoch, once
      // the barrier is taken (a refused one, "Backpressure" or "Closed", must not move it).
      raiseTo(this.#epoch, 0, BigInt(op.epoch));
    }
    return sequence;
  }

  /** Appends any operation; returns its sequence. */
  append(op: WalOperationInput): number {
    return this.#append(normalizeOperation(op, Number(Atomics.load(this.#epoch, 0))));
  }

  /**
   * `appendPut`, waiting for space in the shared buffer (up to `options.timeoutMs`, default
   * 30 s) instead of throwing "Backpressure" at once; throws it when the time is up.
   */
  async appendPutAsync(key: Bytes, value: Bytes, options?: AppendWaitOptions): Promise<number> {
    const signal = signalOf(options);
    const k = toKey(key);
    const v = toBytes(value, "value");
    await this.#space(PUT_OVERHEAD_BYTES + k.length + v.length, _timeout(options), signal);
    throwIfAborted(signal); // aborted before the append is made: nothing is appended
    return this.appendPut(k, v);
  }

  /**
   * `append`, waiting for space in the shared buffer (up to `options.timeoutMs`, default 30 s)
   * instead of throwing "Backpressure" at once; throws it when the time is up.
   */
  async appendAsync(op: WalOperationInput, options?: AppendWaitOptions): Promise<number> {
    const signal = signalOf(options);
    const n = normalizeOperation(op, Number(Atomics.load(this.#epoch, 0)));
    await this.#space(RECORD_HEADER_BYTES + bodyLength(n), _timeout(options), signal);
    throwIfAborted(signal);
    return this.#append(n);
  }

  /**
   * Appends several operations (puts, deletes, commits) to this core as one atomic batch: one
   * record that takes one sequence per operation, consecutive. After any crash, recovery, merge
   * and the CLI see all of them or none. Returns the last sequence. Every operation is checked and
   * copied before a sequence is taken: an empty batch throws `RangeError`, a checkpoint, epoch
   * barrier or nested batch `TypeError`, a batch above `maxRecordBytes` "RecordTooLarge".
   *
   * @example
   * ```ts
   * import { PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
   *
   * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
   * const w = manager.writer(0);
   * const last = w.appendBatch([
   *   { type: "put", key: "order:1", value: "{}" },
   *   { type: "put", key: "order:2", value: "{}" },
   *   { type: "commit", offsets: { orders: 2 } },
   * ]);
   * await w.waitDurable(last);
   * ```
   */
  appendBatch(ops: Iterable<BatchOperationInput>): number {
    return this.#appendBatch(normalizeBatch(ops));
  }

  /**
   * `appendBatch`, waiting for space in the shared buffer (up to `options.timeoutMs`, default
   * 30 s) instead of throwing "Backpressure" at once; throws it when the time is up. The
   * operations are checked and copied before the wait.
   */
  async appendBatchAsync(
    ops: Iterable<BatchOperationInput>,
    options?: AppendWaitOptions,
  ): Promise<number> {
    const signal = signalOf(options);
    const n = normalizeBatch(ops);
    await this.#space(RECORD_HEADER_BYTES + batchBodyLength(n), _timeout(options), signal);
    throwIfAborted(signal);
    return this.#appendBatch(n);
  }

  /**
   * Whether a record of `recordBytes` (see `batchRecordBytes`) fits in this thread's shared
   * buffer for the core now, so that an append of it made in the same turn of the event loop
   * takes no wait and throws no "Backpressure". Only this thread fills that buffer.
   */
  hasRoom(recordBytes: number): boolean {
    safeInteger(recordBytes, "recordBytes");
    this.#checkOpen(recordBytes);
    return this.#ring.fits(recordBytes);
  }

  /**
   * Resolves once a record of `recordBytes` fits in this thread's shared buffer for the core (up
   * to `options.timeoutMs`, default 30 s, then "Backpressure"; `options.signal` stops it).
   * Appends nothing: with {@linkcode CoreWalWriter.hasRoom}, it lets a caller check several
   * cores before appending to any, so that a refusal leaves nothing behind.
   *
   * @example Appending to two cores only once both have room
   * ```ts
   * import { batchRecordBytes, PerCoreWalManager } from "@percore/wal";
   *
   * await using wal = await PerCoreWalManager.open("./data/wal", { cores: 2 });
   * const [a, b] = [wal.writer(0), wal.writer(1)];
   * const opsA = [{ type: "put" as const, key: "a", value: "1" }];
   * const opsB = [{ type: "put" as const, key: "b", value: "2" }];
   * const [na, nb] = [batchRecordBytes(opsA), batchRecordBytes(opsB)];
   * while (!(a.hasRoom(na) && b.hasRoom(nb))) {
   *   await a.waitForRoom(na, { timeoutMs: 1_000 });
   *   await b.waitForRoom(nb, { timeoutMs: 1_000 });
   * }
   * a.appendBatch(opsA); // same turn: neither throws "Backpressure"
   * b.appendBatch(opsB);
   * ```
   */
  waitForRoom(recordBytes: number, options?: AppendWaitOptions): Promise<void> {
    try {
      safeInteger(recordBytes, "recordBytes");
      return this.#space(recordBytes, _timeout(options), signalOf(options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #appendBatch(ops: WalOperation[]): number {
    const len = RECORD_HEADER_BYTES + batchBodyLength(ops);
    const pos = this.#reserve(len);
    const v = this.#ring.view;
    // One atomic add claims the batch's sequences at once: first .. first + count - 1.
    const first = Atomics.add(this.#ctl.b64, BigSlot.NEXT_SEQUENCE, BigInt(ops.length));
    v.setUint32(pos + R_LENGTH, len, true);
    v.setBigUint64(pos + R_SEQUENCE, first, true);
    v.setUint32(pos + R_TYPE, RecordType.atomicBatch | (this.coreId << 16), true);
    v.setUint16(pos + R_PAD, 0, true);
    writeBatchBody(ops, this.#ring.data, v, pos + RECORD_HEADER_BYTES);
    this.#publish(len);
    return Number(first) + ops.length - 1;
  }

  #append(op: WalOperation): number {
    const len = RECORD_HEADER_BYTES + bodyLength(op);
    const pos = this.#reserve(len, op.type === "epochBarrier");
    const seq = this.#header(pos, len, RecordType[op.type]);
    writeBody(op, this.#ring.data, this.#ring.view, pos + RECORD_HEADER_BYTES);
    this.#publish(len);
    return seq;
  }

  /** Writes the producer's part of the header and claims the sequence (space is reserved). */
  #header(pos: number, len: number, type: number): number {
    const v = this.#ring.view;
    const seq = Atomics.add(this.#ctl.b64, BigSlot.NEXT_SEQUENCE, 1n);
    v.setUint32(pos + R_LENGTH, len, true);
    v.setBigUint64(pos + R_SEQUENCE, seq, true);
    // Type, flags (0) and core in one store, then the pad (0): the layout of docs/FORMAT.md.
    v.setUint32(pos + R_TYPE, type | (this.coreId << 16), true);
    v.setUint16(pos + R_PAD, 0, true);
    // The counter is a 64-bit atomic (a BigInt64Array slot); the API hands out numbers.
    return Number(seq);
  }

  #publish(len: number): void {
    this.#ring.publish(len);
    this.#ctl.ring();
  }

  #checkOpen(len: number, barrier = false): void {
    if (this.#detached) {
      throw new PerCoreWalError("Closed", `This writer of core ${this.coreId} was closed`, {
        coreId: this.coreId,
      });
    }
    // One load of the core's state decides: running, held by a shipper, failed or closed.
    const state = this.#ctl.state;
    if (state !== CoreState.Running && !(state === CoreState.Held && barrier)) {
      this.#refuse(state);
    }
    if (len > this.#maxRecord) {
      throw new PerCoreWalError(
        "RecordTooLarge",
        `Record of ${len} bytes is larger than maxRecordBytes (${this.#maxRecord})`,
        { coreId: this.coreId },
      );
    }
  }

  /** Why an append to a core in `state` (not Running) is refused. */
  #refuse(state: number): never {
    if (state === CoreState.Failed) throw this.#ctl.error();
    if (state === CoreState.Held) {
      throw new PerCoreWalError(
        "Backpressure",
        `Core ${this.coreId}'s appends are held: its shipper reached the unshipped limit ` +
          `(entries not yet shipped off the node); retry once it has caught up`,
        { coreId: this.coreId },
      );
    }
    throw new PerCoreWalError(
      "Closed",
      `Cannot append to core ${this.coreId}: the WAL is closed`,
      {
        coreId: this.coreId,
      },
    );
  }

  /**
   * Reserves ring space for a record: waits in a Worker, throws "Backpressure" on the main
   * thread. A `barrier` (an epoch barrier: what a checkpoint needs) passes a shipper's hold.
   */
  #reserve(len: number, barrier = false): number {
    this.#checkOpen(len, barrier);
    let pos = this.#ring.reserve(len);
    if (pos >= 0) return pos;
    if (!canBlock()) throw this.#backpressure();
    const deadline = performance.now() + BLOCK_TIMEOUT_MS;
    while ((pos = this.#ring.reserve(len)) < 0) {
      this.#checkOpen(len, barrier);
      if (performance.now() > deadline) throw this.#backpressure();
      this.#ctl.ring();
      this.#ring.waitForSpace(100);
    }
    return pos;
  }

  async #space(len: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal);
    this.#checkOpen(len);
    const deadline = performance.now() + timeoutMs;
    while (!this.#ring.fits(len)) {
      const left = deadline - performance.now();
      if (left <= 0) throw this.#backpressure();
      this.#ctl.ring();
      // An abort ends the wait at once; the wait for space itself ends within 100 ms.
      await raceSignal(
        this.#ring.waitForSpaceAsync(Math.min(100, Math.max(1, Math.ceil(left)))),
        signal,
      );
      this.#checkOpen(len);
    }
  }

  #backpressure(): PerCoreWalError {
    return new PerCoreWalError(
      "Backpressure",
      `Core ${this.coreId}'s shared buffer is full (${this.#ring.size} bytes waiting for its ` +
        `Worker): await sync(), or use the ...Async appends, which wait for space`,
      { coreId: this.coreId },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Durability

  /**
   * Resolves when every record appended to this core before the call (by any thread) is durable.
   * Rejects with "Closed" once the WAL is closed (during `close()` it still waits for the drain).
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
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#detached || this.#ctl.state === CoreState.Closed) {
      return Promise.reject(
        new PerCoreWalError("Closed", `Cannot sync core ${this.coreId}: the WAL is closed`, {
          coreId: this.coreId,
        }),
      );
    }
    return this.#waitFor(Atomics.load(this.#ctl.b64, BigSlot.NEXT_SEQUENCE) - 1n, signal);
  }

  /**
   * Resolves when record `sequence` of this core (and every one before it) is durable.
   * `options.signal` stops the wait (it rejects with the signal's reason; the record still
   * becomes durable).
   */
  waitDurable(sequence: number, options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = durableWaitSignal(sequence, options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const target = BigInt(sequence);
    const last = Atomics.load(this.#ctl.b64, BigSlot.NEXT_SEQUENCE) - 1n;
    if (target > last) {
      return Promise.reject(
        new RangeError(`sequence ${sequence} was not appended yet (last is ${last})`),
      );
    }
    return this.#waitFor(target, signal);
  }

  #waitFor(target: bigint, signal?: AbortSignal): Promise<void> {
    const b64 = this.#ctl.b64;
    if (Atomics.load(b64, BigSlot.DURABLE) >= target) return Promise.resolve();
    if (raiseTo(b64, BigSlot.SYNC_REQUEST, target)) {
      // Only the Worker needs to hear of a new request (and only if it sleeps: it reads the
      // requests after saying it sleeps).
      this.#ctl.ring();
    }
    let waiter!: Waiter;
    const wait = new Promise<void>((resolve, reject) => {
      waiter = { seq: target, resolve, reject };
      const w = this.#waiters;
      let i = w.length;
      while (i > 0 && w[i - 1].seq > target) i--;
      w.splice(i, 0, waiter);
      if (!this.#watching) this.#watch();
    });
    return raceSignal(wait, signal, () => this.#forget(waiter));
  }

  /** Removes an aborted wait; the last one gone wakes the watch, which then ends. */
  #forget(waiter: Waiter): void {
    const w = this.#waiters;
    const i = w.indexOf(waiter);
    if (i >= 0) w.splice(i, 1);
    if (w.length === 0 && this.#watching) Atomics.notify(this.#ctl.b64, BigSlot.DURABLE);
  }

  /**
   * One wait on the core's durable sequence serves every waiter of this thread: when it moves,
   * the waiters it covers resolve together (64 producers awaiting their records cost one
   * wake-up, not 64).
   */
  async #watch(): Promise<void> {
    this.#watching = true;
    const b64 = this.#ctl.b64;
    const w = this.#waiters;
    try {
      while (w.length > 0) {
        const d = Atomics.load(b64, BigSlot.DURABLE);
        let n = 0;
        while (n < w.length && w[n].seq <= d) n++;
        if (n > 0) {
          for (const x of w.splice(0, n)) x.resolve();
          continue;
        }
        const state = this.#ctl.state;
        if (state !== CoreState.Running) {
          // The record may have become durable just before the core stopped: look once more.
          if (Atomics.load(b64, BigSlot.DURABLE) !== d) continue;
          if (state === CoreState.Failed) {
            const e = this.#ctl.error();
            for (const x of w.splice(0)) x.reject(e);
            return;
          }
          if (state === CoreState.Closed) {
            for (const x of w.splice(0)) {
              x.reject(
                new PerCoreWalError(
                  "Closed",
                  `Core ${this.coreId}'s WAL closed before sequence ${x.seq} was durable`,
                  { coreId: this.coreId },
                ),
              );
            }
            return;
          }
        }
        const r = Atomics.waitAsync(b64, BigSlot.DURABLE, d, 250);
        if (r.async) await keepAlive(r.value, 250);
      }
    } finally {
      this.#watching = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // State

  /** Sequence of the last record appended to this core, by any thread (0 when none). */
  get sequence(): number {
    return Number(Atomics.load(this.#ctl.b64, BigSlot.NEXT_SEQUENCE)) - 1;
  }

  /** Sequence of the last durable record of this core (0 when none). */
  get durableSequence(): number {
    return Number(Atomics.load(this.#ctl.b64, BigSlot.DURABLE));
  }

  /** After the last record the core's Worker has taken in (it takes them in within microseconds). */
  get position(): WalPosition {
    const b = this.#ctl.b64;
    return {
      segment: Number(Atomics.load(b, BigSlot.POS_SEGMENT)),
      offset: Number(Atomics.load(b, BigSlot.POS_OFFSET)),
      sequence: Number(Atomics.load(b, BigSlot.POS_SEQUENCE)),
    };
  }

  /** After the last durable record (segment, offset and sequence read consistently). */
  get syncedPosition(): WalPosition {
    const b = this.#ctl.b64;
    while (true) {
      const v = Atomics.load(b, BigSlot.SYNCED_VERSION);
      const p = {
        segment: Number(Atomics.load(b, BigSlot.SYNCED_SEGMENT)),
        offset: Number(Atomics.load(b, BigSlot.SYNCED_OFFSET)),
        sequence: Number(Atomics.load(b, BigSlot.DURABLE)),
      };
      if ((v & 1n) === 0n && Atomics.load(b, BigSlot.SYNCED_VERSION) === v) return p;
    }
  }

  /**
   * Detaches this writer from its shared buffer (a writer attached in a Worker that is done):
   * the core's Worker takes what is left and then frees it. Appends afterwards fail.
   */
  close(): void {
    this.#detached = true;
    this.#ring.release();
  }

  /** Detaches the writer. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The error that stopped this core, if it failed. */
  get failure(): PerCoreWalError | undefined {
    return this.#ctl.state === CoreState.Failed ? this.#ctl.error() : undefined;
  }
}
