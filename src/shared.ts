/**
 * Shared memory between producers and a core's Worker: the core's control block and the
 * producer rings. No message crosses threads per record: producers claim a sequence with one
 * atomic add, encode the record into their own ring, and publish it by moving the ring's tail.
 *
 * @module
 */

import { type ErrorData, errorFromData, errorToData } from "./error_data.ts";
import { PerCoreWalError } from "./errors.ts";
import { R_LENGTH, recordSequence } from "./format.ts";
import { ringBell } from "./io/bell.ts";

// ---------------------------------------------------------------------------------------------
// The core's control block

/** Int32 slots of the control block. */
export const IntSlot = {
  /** {@linkcode CoreState}. */
  STATE: 0,
  /** Bumped (and notified) by producers to wake a sleeping Worker. */
  DOORBELL: 1,
  /** How the Worker sleeps ({@linkcode Sleep}); `Sleep.Awake` while it works. */
  SLEEPING: 2,
  /** Length of the JSON error in the error area. */
  ERROR_LENGTH: 3,
  /** The eventfd a Worker sleeping in the kernel is woken by, plus one (0: none). */
  BELL: 4,
  /** Producers between seeing `Sleep.Kernel` and writing the bell (the fd stays open meanwhile). */
  RINGING: 5,
  /** Messages posted to the Worker (it reads its port until it has handled as many). */
  MAIL: 6,
  /** Set by a producer thread that cannot write the bell (no FFI there): the Worker stops using it. */
  BELL_REFUSED: 7,
} as const;

/** Values of `IntSlot.SLEEPING`. */
export const Sleep = {
  Awake: 0,
  /** In `Atomics.wait` or `Atomics.waitAsync` on the doorbell: `Atomics.notify` wakes it. */
  Atomics: 1,
  /** In `io_uring_enter`, waiting for a completion: writing the bell eventfd wakes it. */
  Kernel: 2,
} as const;

/** BigInt64 slots of the control block (after 64 bytes of Int32 slots). */
export const BigSlot = {
  /** Sequence the next producer to append claims (one past the last claimed). */
  NEXT_SEQUENCE: 0,
  /** Last durable sequence. */
  DURABLE: 1,
  /** Highest sequence a `sync()` asked for. */
  SYNC_REQUEST: 2,
  /** Segment and offset after the last record the Worker took in. */
  POS_SEGMENT: 3,
  POS_OFFSET: 4,
  /** Sequence of the last record the Worker took in. */
  POS_SEQUENCE: 5,
  /** Segment and offset after the last durable record. */
  SYNCED_SEGMENT: 6,
  SYNCED_OFFSET: 7,
  /** Seqlock of DURABLE and the synced segment and offset: odd while they change. */
  SYNCED_VERSION: 8,
} as const;

/** Float64 slots of the metrics area. */
export const MetricSlot = {
  RECORDS: 0,
  BYTES: 1,
  BATCHES: 2,
  FDATASYNCS: 3,
  LAT_COUNT: 4,
  LAT_P50: 5,
  LAT_P99: 6,
  LAT_MAX: 7,
  IN_FLIGHT: 8,
  PENDING_BYTES: 9,
  /** Sum of the batch latencies (µs). */
  LAT_SUM: 10,
  /** First of the cumulative latency bucket counts (one per `LATENCY_BUCKET_BOUNDS_US`). */
  LAT_BUCKETS: 16,
} as const;

/**
 * Raises `slots[index]` to `value` unless it is already at least that (with other threads
 * raising it too); returns whether this call raised it.
 */
export function raiseTo(slots: BigInt64Array, index: number, value: bigint): boolean {
  let cur = Atomics.load(slots, index);
  while (cur < value) {
    const prev = Atomics.compareExchange(slots, index, cur, value);
    if (prev === cur) return true;
    cur = prev;
  }
  return false;
}

/**
 * Lifecycle of a core, in `IntSlot.STATE`. Closing: appends refused, waits go on until Closed.
 * Held: running, but a shipper's unshipped limit holds the producers' appends (they throw
 * "Backpressure"; epoch barriers still pass); set and cleared by `holdAppends` (ship_hold.ts)
 * with compare-and-swap from and to Running only, so that it never hides Failed or Closing. It
 * lives in the state slot so that an append still pays one load: the one it paid already.
 */
export const CoreState = {
  Starting: 0,
  Running: 1,
  Failed: 2,
  Closed: 3,
  Closing: 4,
  Held: 5,
} as const;

const INT_BYTES = 64;
const BIG_BYTES = 128;
const METRICS_OFFSET = INT_BYTES + BIG_BYTES;
const METRICS_BYTES = 384;
const ERROR_OFFSET = METRICS_OFFSET + METRICS_BYTES;
const ERROR_BYTES = 2048;
/** Size of a core's control block. */
export const CONTROL_BYTES = ERROR_OFFSET + ERROR_BYTES;

/** Typed views over a core's control block. */
export class Control {
  /** The shared memory. */
  readonly sab: SharedArrayBuffer;
  /** Int32 slots ({@linkcode IntSlot}). */
  readonly i32: Int32Array;
  /** BigInt64 slots ({@linkcode BigSlot}). */
  readonly b64: BigInt64Array;
  /** Metrics ({@linkcode MetricSlot}). */
  readonly metrics: Float64Array;
  readonly #error: Uint8Array;

  /** Views over `sab`, or a new control block. */
  constructor(sab = new SharedArrayBuffer(CONTROL_BYTES)) {
    this.sab = sab;
    this.i32 = new Int32Array(sab, 0, INT_BYTES / 4);
    this.b64 = new BigInt64Array(sab, INT_BYTES, BIG_BYTES / 8);
    this.metrics = new Float64Array(sab, METRICS_OFFSET, METRICS_BYTES / 8);
    this.#error = new Uint8Array(sab, ERROR_OFFSET, ERROR_BYTES);
  }

  /** The core's state. */
  get state(): number {
    return Atomics.load(this.i32, IntSlot.STATE);
  }

  /** Records why the core failed (readable from any thread), then marks it failed and wakes everyone. */
  fail(error: PerCoreWalError): void {
    if (this.state === CoreState.Failed) return;
    const json = new TextEncoder().encode(JSON.stringify(errorToData(error)));
    const n = Math.min(json.length, ERROR_BYTES);
    this.#error.set(json.subarray(0, n));
    Atomics.store(this.i32, IntSlot.ERROR_LENGTH, n);
    Atomics.store(this.i32, IntSlot.STATE, CoreState.Failed);
    this.wakeAll();
  }

  /** The error the core failed with (rebuilt from shared memory). */
  error(): PerCoreWalError {
    const n = Atomics.load(this.i32, IntSlot.ERROR_LENGTH);
    let data: ErrorData;
    try {
      data = JSON.parse(new TextDecoder().decode(this.#error.slice(0, n)));
    } catch (e) {
      // A message cut at ERROR_BYTES is not JSON any more.
      if (!(e instanceof SyntaxError)) throw e;
      return new PerCoreWalError("Failed", "The core failed (its error did not fit shared memory)");
    }
    return errorFromData(data) as PerCoreWalError;
  }

  /** Posts `message` to the core's Worker and wakes it to read it (it counts `IntSlot.MAIL`). */
  post(worker: { postMessage(message: unknown): void }, message: unknown): void {
    worker.postMessage(message);
    Atomics.add(this.i32, IntSlot.MAIL, 1);
    this.ring();
  }

  /** Wakes the Worker and every thread waiting for durability. */
  wakeAll(): void {
    Atomics.add(this.i32, IntSlot.DOORBELL, 1);
    Atomics.notify(this.i32, IntSlot.DOORBELL);
    if (Atomics.load(this.i32, IntSlot.SLEEPING) === Sleep.Kernel) this.#ringBell();
    Atomics.notify(this.b64, BigSlot.DURABLE);
  }

  /**
   * Wakes the Worker if it sleeps. The first producer to see it asleep clears the flag and
   * rings; the others need not: the Worker looks at every ring and request once awake.
   */
  ring(): void {
    const s = Atomics.load(this.i32, IntSlot.SLEEPING);
    if (s === Sleep.Atomics) {
      if (Atomics.compareExchange(this.i32, IntSlot.SLEEPING, Sleep.Atomics, Sleep.Awake) === s) {
        Atomics.add(this.i32, IntSlot.DOORBELL, 1);
        Atomics.notify(this.i32, IntSlot.DOORBELL);
      }
    } else if (s === Sleep.Kernel) {
      this.#ringBell();
    }
  }

  /**
   * Wakes a Worker that sleeps in the kernel by writing its bell eventfd (one system call).
   * `IntSlot.RINGING` counts the producers in here, so that the Worker never closes the fd while one
   * may still write to it (the number could by then name another file).
   */
  #ringBell(): void {
    const i32 = this.i32;
    Atomics.add(i32, IntSlot.RINGING, 1);
    try {
      if (
        Atomics.compareExchange(i32, IntSlot.SLEEPING, Sleep.Kernel, Sleep.Awake) !== Sleep.Kernel
      ) {
        return;
      }
      const fd = Atomics.load(i32, IntSlot.BELL) - 1;
      // Without FFI on this thread the Worker wakes at its timeout, then sleeps on Atomics.
      if (fd < 0 || !ringBell(fd)) Atomics.store(i32, IntSlot.BELL_REFUSED, 1);
    } finally {
      Atomics.sub(i32, IntSlot.RINGING, 1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Producer rings: one producer thread, one consumer (the core's Worker)

/** See `ProducerRing.#soft`. */
const SOFT_RING_BYTES = 1 << 20;

// Int32 slots of a ring's header (ring slots, apart from the record offsets R_* of format.ts).
const RING_TAIL_SLOT = 0;
const RING_HEAD_SLOT = 1;
const RING_OWNER_SLOT = 2;
const RING_WAITING_SLOT = 3;
const RING_HEADER = 64;
const WRAP = 0xffffffff;

/**
 * A single-producer single-consumer ring of variable-size records, packed one after another so
 * that the consumer can copy a run of them at once. A record that does not fit before the end
 * of the data area goes to its start: a wrap marker (a length of `0xffffffff`) says so where at
 * least 8 bytes are left, and fewer than 8 always mean it (no record is that short).
 */
export class ProducerRing {
  /** The shared memory: a 64-byte header, then the data. */
  readonly sab: SharedArrayBuffer;
  /** Header slots: tail, head, owner, waiting. */
  readonly ctl: Int32Array;
  /** The data area. */
  readonly data: Uint8Array;
  /** A DataView over the data area. */
  readonly view: DataView;
  /** Data bytes (a power of two). */
  readonly size: number;
  readonly #mask: number;
  // The producer owns the tail: it keeps its own copy, and a head it read last, which is
  // behind the real one (the consumer only moves it forward), so the room it shows is safe.
  #tail = -1;
  #head = 0;
  /**
   * Records go back to the start of the data area once past this many bytes, when the consumer
   * has taken everything: a producer the Worker keeps up with cycles through memory that stays
   * in the CPU caches; the rest of the buffer takes bursts.
   */
  readonly #soft: number;
  /** Where the producer next looks whether it can go back to the start (every soft / 16). */
  #softEnd: number;
  #pendingSkip = 0;
  /** The record reserved last went back to the start of an empty ring early (see reserve()). */
  #skipHead = false;

  /**
   * Views over `sab`, or a new ring of `dataBytes` (rounded up to a power of two). A producer
   * goes back to the start past `softBytes` when it can (1 MiB; see `#soft`).
   */
  constructor(sabOrSize: SharedArrayBuffer | number, softBytes = SOFT_RING_BYTES) {
    const sab = typeof sabOrSize === "number"
      ? new SharedArrayBuffer(RING_HEADER + 2 ** Math.ceil(Math.log2(Math.max(sabOrSize, 4096))))
      : sabOrSize;
    this.sab = sab;
    this.ctl = new Int32Array(sab, 0, RING_HEADER / 4);
    this.size = sab.byteLength - RING_HEADER;
    this.#mask = this.size - 1;
    this.data = new Uint8Array(sab, RING_HEADER, this.size);
    this.view = new DataView(sab, RING_HEADER, this.size);
    this.#soft = this.#softEnd = Math.min(this.size, softBytes);
  }

  /** Claims the ring for the calling thread; false if another thread has it. */
  claim(): boolean {
    return Atomics.compareExchange(this.ctl, RING_OWNER_SLOT, 0, 1) === 0;
  }

  /** The producer is done with the ring: the Worker drops it once it is empty. */
  release(): void {
    Atomics.store(this.ctl, RING_OWNER_SLOT, 2);
  }

  /** Whether the producer released the ring and every record in it was taken. */
  get finished(): boolean {
    return Atomics.load(this.ctl, RING_OWNER_SLOT) === 2 && this.usedBytes === 0;
  }

  // --- producer side

  /** Bytes to skip before a record of `length` bytes at `phys`: what is left, or 0. */
  #skip(phys: number, length: number): number {
    const rest = this.size - phys;
    return length > rest ? rest : 0;
  }

  /** Whether the records go on at the start of the data area from `phys`. */
  #wrapsAt(phys: number): boolean {
    return this.size - phys < 8 || this.view.getUint32(phys + R_LENGTH, true) === WRAP;
  }

  /**
   * Reserves `length` bytes contiguous in the data area: returns their offset, or -1 if the
   * ring is full. Writes a wrap marker when the record does not fit before the end.
   */
  reserve(length: number): number {
    if (this.#tail < 0) this.#tail = Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0;
    const tail = this.#tail;
    const phys = tail & this.#mask;
    let skip = this.#skip(phys, length);
    let early = false;
    if (skip === 0 && phys + length > this.#softEnd && length <= phys) {
      // Past the soft end: back to the start if the ring is empty. (The record ends before the
      // marker: a consumer at the old head reads the marker, not the record.)
      this.#head = Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0;
      if (this.#head === tail) {
        skip = this.size - phys;
        early = true;
      } else {
        this.#softEnd = phys + length + (this.#soft >>> 4);
      }
    }
    if (((tail - this.#head) >>> 0) + skip + length > this.size) {
      this.#head = Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0;
      if (((tail - this.#head) >>> 0) + skip + length > this.size) return -1;
    }
    this.#pendingSkip = skip;
    // After an early wrap publish() moves the head past the skipped end too, unless the
    // consumer got there first, so that the ring keeps all its room for a burst that finds the
    // consumer stalled.
    this.#skipHead = early;
    if (skip === 0) return phys;
    if (skip >= 8) this.view.setUint32(phys + R_LENGTH, WRAP, true);
    this.#softEnd = this.#soft;
    return 0;
  }

  /** Publishes the record reserved last (of `length` bytes). */
  publish(length: number): void {
    const from = this.#tail;
    this.#tail = (from + this.#pendingSkip + length) >>> 0;
    Atomics.store(this.ctl, RING_TAIL_SLOT, this.#tail | 0);
    if (this.#skipHead) {
      this.#skipHead = false;
      const past = (from + this.#pendingSkip) >>> 0;
      if (Atomics.compareExchange(this.ctl, RING_HEAD_SLOT, from | 0, past | 0) === (from | 0)) {
        this.#head = past;
      }
    }
  }

  /** Whether `length` more bytes could be reserved now. */
  fits(length: number): boolean {
    const tail = Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0;
    const used = (tail - (Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0)) >>> 0;
    return used + this.#skip(tail & this.#mask, length) + length <= this.size;
  }

  /** Blocks (Worker threads only) until the consumer frees space or `timeoutMs` passes. */
  waitForSpace(timeoutMs: number): void {
    const head = Atomics.load(this.ctl, RING_HEAD_SLOT);
    Atomics.store(this.ctl, RING_WAITING_SLOT, 1);
    Atomics.wait(this.ctl, RING_HEAD_SLOT, head, timeoutMs);
  }

  /** Resolves when the consumer frees space or `timeoutMs` passes. */
  async waitForSpaceAsync(timeoutMs: number): Promise<void> {
    const head = Atomics.load(this.ctl, RING_HEAD_SLOT);
    Atomics.store(this.ctl, RING_WAITING_SLOT, 1);
    const r = Atomics.waitAsync(this.ctl, RING_HEAD_SLOT, head, timeoutMs);
    if (r.async) await keepAlive(r.value, timeoutMs);
  }

  // --- consumer side

  /**
   * Offers the published records from the head to `take(start, end)`, one contiguous stretch
   * of the data area at a time (a wrap splits them). `take` returns the record boundary it
   * consumed up to; what it consumed is freed. Stops when it consumes less than offered, unless
   * it stopped at a wrap marker.
   */
  consume(take: (start: number, end: number) => number): void {
    let head = Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0;
    const tail = Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0;
    const start = head;
    try {
      while (head !== tail) {
        const phys = head & this.#mask;
        if (this.#wrapsAt(phys)) {
          head = (head + this.size - phys) >>> 0;
          continue;
        }
        const end = phys + Math.min((tail - head) >>> 0, this.size - phys);
        const reached = take(phys, end);
        head = (head + reached - phys) >>> 0;
        if (reached === phys || (reached < end && !this.#wrapsAt(reached))) break;
      }
    } finally {
      if (head !== start) {
        Atomics.store(this.ctl, RING_HEAD_SLOT, head | 0);
        if (Atomics.load(this.ctl, RING_WAITING_SLOT) !== 0) {
          Atomics.store(this.ctl, RING_WAITING_SLOT, 0);
          Atomics.notify(this.ctl, RING_HEAD_SLOT);
        }
      }
    }
  }

  /** Offset of the next record in the data area, or -1 if the ring is empty. */
  peek(): number {
    let head = Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0;
    const tail = Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0;
    if (head === tail) return -1;
    let phys = head & this.#mask;
    if (this.#wrapsAt(phys)) {
      head = (head + this.size - phys) >>> 0;
      Atomics.store(this.ctl, RING_HEAD_SLOT, head | 0);
      if (head === tail) return -1;
      phys = 0;
    }
    return phys;
  }

  /** Sequence of the record at `offset` (from {@linkcode peek}). */
  sequenceAt(offset: number): number {
    return recordSequence(this.view, offset);
  }

  /** Bytes published and not yet consumed. */
  get usedBytes(): number {
    return ((Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0) -
      (Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0)) >>> 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Keeping the event loop alive while waiting

let _waiters = 0;
let _timer: ReturnType<typeof setInterval> | undefined;

/**
 * Awaits `p` while holding a timer: Deno's event loop does not count `Atomics.waitAsync` as
 * pending work, and would otherwise end the program with the promise unsettled.
 */
export async function keepAlive<T>(p: Promise<T>, _timeoutMs: number): Promise<T> {
  if (_waiters++ === 0) _timer = setInterval(() => {}, 60_000);
  try {
    return await p;
  } finally {
    if (--_waiters === 0) clearInterval(_timer);
  }
}
