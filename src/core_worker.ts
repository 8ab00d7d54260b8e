/**
 * The Worker of one core: it owns the core's ring and segments (a `CoreLog`), takes records
 * from the producer rings in sequence order, and publishes durability in shared memory.
 *
 * Messages in: `init`, `addRing`, `close`. Out: `ready`, `error` (open failed), `failed`
 * (the core failed later), `closed`.
 *
 * @module
 */

import { PerCoreWalConfig, type PerCoreWalOptions } from "./config.ts";
import { CoreLog } from "./core_log.ts";
import { createBackend, preloadNative } from "./io/choose.ts";
import { type ErrorData, errorFromData, errorToData } from "./error_data.ts";
import { PerCoreWalError } from "./errors.ts";
import type { WalEvent } from "./events.ts";
import { type FaultPlan, FaultyBackend } from "./io/faulty.ts";
import type { IoBackend } from "./io/backend.ts";
import { BigSlot, Control, CoreState, IntSlot, MetricSlot, ProducerRing, Sleep } from "./shared.ts";
import { closeBell, createBell } from "./io/bell.ts";
import { type DurabilityOps, replaceDurabilityOps } from "./fs.ts";

/** The first message a core Worker gets. */
export interface InitMessage {
  type: "init";
  baseDir: string;
  numCores: number;
  options: PerCoreWalOptions;
  coreId: number;
  control: SharedArrayBuffer;
  epoch: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  minEpoch: number;
  faults?: FaultPlan;
  /** Tests only: the backend comes from this module (see {@linkcode BackendModule}). */
  backendModule?: { url: string; data: unknown };
  /** Tests only: the longest blocking wait (default {@linkcode IDLE_WAIT_MS}). */
  idleWaitMs?: number;
}

/**
 * What a test-only backend module gives a core Worker (`backendModule` of `ManagerOpenOptions`):
 * the Worker imports `url` and calls its `createBackend` export with a {@linkcode BackendModuleInit}
 * before the core's log opens. Not part of the public API (the power-loss simulator's proxy,
 * `tests/_power_loss_proxy.ts`, is the one user).
 */
export interface BackendModule {
  createBackend(init: BackendModuleInit): IoBackend | Promise<IoBackend>;
}

/**
 * What {@linkcode BackendModule.createBackend} gets: this Worker's own instances of the module's
 * seams (the bundle holds its own copy of every module, so the test module's imports of `src/`
 * are other instances): its `replaceDurabilityOps` (the Worker's renames, removes, cuts and fsyncs
 * outside the backend) and `errorFromData` (errors of this Worker's `PerCoreWalError` class).
 */
export interface BackendModuleInit {
  coreId: number;
  /** What the manager's option gave for this core (structured-cloned). */
  data: unknown;
  replaceDurabilityOps(ops: DurabilityOps | undefined): DurabilityOps;
  errorFromData(data: ErrorData): Error;
}

/** The latency percentiles in shared memory are at most this old (their computing costs µs). */
const METRICS_PERIOD_MS = 20;
/** Longest a Worker blocks in one wait before its event loop runs (timers). */
const IDLE_WAIT_MS = 50;
/** A busy Worker lets its event loop run (timers, messages) at least this often. */
const BUSY_YIELD_MS = 2;
/** Promise ticks from a completion to its handler (io_uring chain, then CoreLog's batch). */
const SETTLE_TICKS = 4;
/** How long close() waits for producers still writing the bell (see #closeBell). */
const CLOSE_BELL_WAIT_MS = 1_000;
/** A closing Worker fails after this long without a record while one is claimed. */
const CLOSE_STALL_MS = 5_000;

/** Messages this Worker has handled (`IntSlot.MAIL` counts those posted). */
let mailRead = 0;

class CoreWorker {
  readonly log: CoreLog;
  readonly ctl: Control;
  rings: ProducerRing[];
  readonly #inner: IoBackend | undefined;
  closing = false;
  #requested = 0;
  #lastMetrics = 0;
  readonly #yield = new MessageChannel();
  #resume: (() => void) | undefined;
  /** Holds the event loop open while the Worker runs: a timer per sleep would cost more. */
  readonly #alive = setInterval(() => {}, 3_600_000);
  /** The eventfd producers write to wake the Worker from a kernel sleep; -1 if none. */
  readonly #bell: number;
  /** The kernel sleep turned out unusable (a producer thread without FFI, a broken bell). */
  #noKernelSleep = false;
  readonly #idleWaitMs: number;
  #lastYield = 0;
  /** Publishes the latency percentiles at the end of the period when they are behind. */
  #staleTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the Worker started waiting for a sequence that later ones were published after. */
  #gapSince: number | undefined;

  constructor(
    log: CoreLog,
    ctl: Control,
    ring: ProducerRing,
    inner: IoBackend | undefined,
    idleWaitMs = IDLE_WAIT_MS,
  ) {
    this.log = log;
    this.#idleWaitMs = idleWaitMs;
    // Without a bell (no io_uring, or no eventfd) the Worker sleeps on Atomics.
    this.#bell = log.canWaitIdle ? createBell() : -1;
    Atomics.store(ctl.i32, IntSlot.BELL, this.#bell + 1);
    this.ctl = ctl;
    this.rings = [ring];
    this.#inner = inner;
    this.#yield.port1.onmessage = () => this.#resume?.();
  }

  /** Takes records from the rings, in sequence order, into the log. */
  drain(): number {
    const log = this.log;
    const first = log.nextSequence;
    let progressed = true;
    try {
      while (progressed && log.nextSequence - first < 65536) {
        progressed = false;
        for (const r of this.rings) {
          const { data, view } = r;
          const before = log.nextSequence;
          // One clock read per pass, and only if the ring holds records: consume() read the
          // tail first, so every record offered was published before it.
          let us = -1;
          // appendFrom throws "Backpressure" only before taking a record: it stays in its ring.
          r.consume((start, end) => {
            if (us < 0) us = Math.round((performance.timeOrigin + performance.now()) * 1000);
            return log.appendFrom(data, view, start, end, us);
          });
          if (log.nextSequence !== before) progressed = true;
        }
      }
    } finally {
      if (log.nextSequence > first) {
        const p = log.position;
        const b = this.ctl.b64;
        Atomics.store(b, BigSlot.POS_SEGMENT, BigInt(p.segment));
        Atomics.store(b, BigSlot.POS_OFFSET, BigInt(p.offset));
        Atomics.store(b, BigSlot.POS_SEQUENCE, BigInt(p.sequence));
      }
      // Rings whose producer detached and that are empty are dropped.
      if (this.rings.some((r) => r.finished)) {
        this.rings = this.rings.filter((r, i) => i === 0 || !r.finished);
      }
    }
    return log.nextSequence - first;
  }

  /** Asks the log to flush what a `sync()` waits for. */
  requestSyncs(): void {
    const req = Number(Atomics.load(this.ctl.b64, BigSlot.SYNC_REQUEST));
    const target = Math.min(req, this.log.sequence);
    if (target > this.#requested) {
      this.#requested = target;
      // To make the log flush: a failure of the log reaches the producers through onFail. A
      // segment whose preparation failed (a full disk) does not fail the log; it rejects the
      // waits it holds up, and a producer's sync() waiting on shared memory would wait for
      // ever: fail the core with it, as an append refused for the same reason does.
      this.log.waitDurable(target).catch((e) => {
        if (
          this.log.failure === undefined && e instanceof PerCoreWalError && e.code !== "Closed"
        ) {
          this.ctl.fail(e);
          scope.postMessage({ type: "failed", error: errorToData(e) });
        }
      });
    }
  }

  /** Whether a ring holds the next record. */
  #ready(): boolean {
    const next = this.log.nextSequence;
    for (const r of this.rings) {
      const off = r.peek();
      if (off >= 0 && r.sequenceAt(off) === next) return true;
    }
    return false;
  }

  /** Everything claimed has been taken in. */
  drained(): boolean {
    return this.log.nextSequence >= Number(Atomics.load(this.ctl.b64, BigSlot.NEXT_SEQUENCE));
  }

  /**
   * Waits for a producer's record or `sync()`, a completion or a message, whichever comes
   * first. Three ways, fastest first: in the kernel (the io_uring backend; producers write the
   * bell eventfd), in `Atomics.wait` (the sync backend, whose operations have completed when
   * they return), or on the event loop (`Atomics.waitAsync`; completions through the eventfd).
   * The first two block the thread, for at most {@linkcode IDLE_WAIT_MS}; after a wait that
   * timed out the event loop runs (timers).
   */
  async sleep(): Promise<void> {
    // A segment being prepared is a chain of promises that may go on without any I/O (the
    // sync backend): let it run to its end (a turn of the event loop drains every promise
    // handler) rather than freeze it while the thread blocks.
    if (this.log.preparing) await this.yield();
    const i32 = this.ctl.i32;
    const how = this.#sleepMode();
    Atomics.store(i32, IntSlot.SLEEPING, how === "kernel" ? Sleep.Kernel : Sleep.Atomics);
    const bell = Atomics.load(i32, IntSlot.DOORBELL);
    // A sync() raises its request, then rings: read requests after the bell, or one raised
    // just before it would wait for the timeout.
    this.requestSyncs();
    let woken = true;
    if (!this.#ready() && !(this.closing && this.drained()) && !this.#mailWaiting()) {
      if (how === "kernel") {
        const r = this.log.waitIdle(this.#bell, this.#waitMs());
        if (r === "unavailable") this.#noKernelSleep = true;
        woken = r === "woken";
      } else if (how === "atomics") {
        woken = Atomics.wait(i32, IntSlot.DOORBELL, bell, this.#waitMs()) !== "timed-out";
      } else {
        // #alive keeps the event loop running meanwhile (waitAsync alone does not).
        this.log.setOwnerIdle(true);
        const r = Atomics.waitAsync(i32, IntSlot.DOORBELL, bell, 200);
        if (r.async) await r.value;
        this.log.setOwnerIdle(false);
      }
    }
    Atomics.store(i32, IntSlot.SLEEPING, Sleep.Awake);
    if (!woken) await this.yield();
  }

  /** Whether the Worker sleeps in the kernel (then it waits there for completions too). */
  get sleepsInKernel(): boolean {
    return this.#bell >= 0 && !this.#noKernelSleep;
  }

  #sleepMode(): "kernel" | "atomics" | "loop" {
    if (this.sleepsInKernel) {
      if (Atomics.load(this.ctl.i32, IntSlot.BELL_REFUSED) === 0) return "kernel";
      this.#noKernelSleep = true;
    }
    return this.log.backend === "sync" ? "atomics" : "loop";
  }

  /**
   * How long a blocking wait may last: until the latency figures are due at the latest, and
   * 1 ms while the log's `syncDelayMs` flush is due (timers need the event loop).
   */
  #waitMs(): number {
    let ms = this.#idleWaitMs;
    if (this.#staleTimer !== undefined) ms = Math.min(ms, this.#metricsDueIn(performance.now()));
    return this.log.waitBound(Math.max(0, ms));
  }

  /** Whether a message was posted that this Worker has not handled yet. */
  #mailWaiting(): boolean {
    return Atomics.load(this.ctl.i32, IntSlot.MAIL) !== mailRead;
  }

  /** Lets completions, timers and messages run on the event loop. */
  yield(): Promise<void> {
    this.#lastYield = performance.now();
    return new Promise((resolve) => {
      this.#resume = resolve;
      this.#yield.port2.postMessage(0);
    });
  }

  /** Lets the promise handlers that completions queued run (a chain resolves, then CoreLog). */
  async #settle(): Promise<void> {
    for (let i = 0; i < SETTLE_TICKS; i++) await null;
  }

  publishDurable(seq: number, segment: number, offset: number): void {
    const b = this.ctl.b64;
    Atomics.add(b, BigSlot.SYNCED_VERSION, 1n); // odd: being written
    Atomics.store(b, BigSlot.SYNCED_SEGMENT, BigInt(segment));
    Atomics.store(b, BigSlot.SYNCED_OFFSET, BigInt(offset));
    Atomics.store(b, BigSlot.DURABLE, BigInt(seq));
    Atomics.add(b, BigSlot.SYNCED_VERSION, 1n);
    Atomics.notify(b, BigSlot.DURABLE);
    this.publishMetrics();
  }

  /** Milliseconds from `now` until the latency figures are a period old. */
  #metricsDueIn(now: number): number {
    return this.#lastMetrics + METRICS_PERIOD_MS + 1 - now;
  }

  /** Copies the counters to shared memory; the latency percentiles at most every 20 ms. */
  publishMetrics(force = false): void {
    const m = this.log.metrics(false);
    const f = this.ctl.metrics;
    f[MetricSlot.RECORDS] = m.recordsAppended;
    f[MetricSlot.BYTES] = m.bytesAppended;
    f[MetricSlot.BATCHES] = m.batches;
    f[MetricSlot.FDATASYNCS] = m.fdatasyncs;
    f[MetricSlot.IN_FLIGHT] = m.inFlightBatches;
    f[MetricSlot.PENDING_BYTES] = m.pendingBytes;
    const now = performance.now();
    if (!force && now - this.#lastMetrics <= METRICS_PERIOD_MS) {
      // Published less than a period ago: once more when the period is over, whatever the
      // Worker is doing then (a sleeping Worker would otherwise leave them old).
      this.#staleTimer ??= setTimeout(() => {
        this.#staleTimer = undefined;
        this.publishMetrics(true);
      }, this.#metricsDueIn(now));
    } else {
      clearTimeout(this.#staleTimer);
      this.#staleTimer = undefined;
      this.#lastMetrics = now;
      const l = this.log.metrics().syncLatency;
      f[MetricSlot.LAT_COUNT] = l.count;
      f[MetricSlot.LAT_P50] = l.p50Us;
      f[MetricSlot.LAT_P99] = l.p99Us;
      f[MetricSlot.LAT_MAX] = l.maxUs;
      const h = this.log.syncLatencyBuckets();
      f[MetricSlot.LAT_SUM] = h.sumUs;
      f.set(h.counts, MetricSlot.LAT_BUCKETS);
    }
  }

  /**
   * A producer thread that dies between claiming a sequence and publishing its record stops
   * its core (records are written in sequence order): after 10 s of records waiting behind
   * such a gap, the core fails with a clear error instead of hanging.
   */
  #checkGap(): void {
    if (this.#ready() || !this.rings.some((r) => r.usedBytes > 0)) {
      this.#gapSince = undefined;
      return;
    }
    const now = performance.now();
    this.#gapSince ??= now;
    if (now - this.#gapSince > 10_000) {
      throw new PerCoreWalError(
        "Failed",
        `Core ${this.log.coreId}: sequence ${
          Number(this.log.sequence) + 1
        } was claimed but never ` +
          `published for 10 s while later records wait (a producer thread died mid-append?)`,
        { coreId: this.log.coreId },
      );
    }
  }

  async run(): Promise<void> {
    // Busy, the Worker polls for completions itself (log.pollCompletions below); it lets them
    // wake its event loop only while it waits there (lazyCompletionWait).
    this.log.setOwnerIdle(false);
    try {
      await this.#loop();
    } finally {
      this.log.setOwnerIdle(true);
    }
  }

  async #loop(): Promise<void> {
    let stalledSince: number | undefined;
    this.#lastYield = performance.now();
    while (true) {
      let n = 0;
      const before = this.log.nextSequence;
      try {
        n = this.drain();
      } catch (e) {
        if (!(e instanceof PerCoreWalError) || e.code !== "Backpressure") throw e;
        // Records taken before the log refused more are progress (a close waits for them).
        n = this.log.nextSequence - before;
        // The log holds maxPendingBytes not yet durable: let them reach the disk first.
        const coreId = this.log.coreId;
        _event({
          type: "backpressureBegan",
          coreId,
          cause: "maxPendingBytes",
          pendingBytes: this.log.metrics(false).pendingBytes,
        });
        this.log.setOwnerIdle(true);
        // A failure here fails the core (onFail); the loop then stops on its next append.
        await this.log.sync().catch(() => {});
        this.log.setOwnerIdle(false);
        _event({ type: "backpressureEnded", coreId, cause: "maxPendingBytes" });
      }
      this.requestSyncs();
      // Batches that completed while the rings were drained: at once, not after the event loop
      // has woken for the eventfd (a thread-pool round trip); their handlers publish them.
      this.log.pollCompletions();
      await this.#settle();
      if (this.log.failure !== undefined) return;
      if (this.closing && this.drained()) return;
      // Messages, and timers at least every BUSY_YIELD_MS.
      if (this.#mailWaiting() || performance.now() - this.#lastYield >= BUSY_YIELD_MS) {
        await this.yield();
      }
      if (n > 0) {
        stalledSince = undefined;
        continue;
      }
      this.publishMetrics();
      this.#checkGap();
      if (this.closing) {
        const now = performance.now();
        stalledSince ??= now;
        if (now - stalledSince > CLOSE_STALL_MS) {
          throw new PerCoreWalError(
            "Failed",
            `Core ${this.log.coreId} closed with sequence ${
              Number(this.log.sequence) + 1
            } claimed but never published`,
          );
        }
      }
      await this.sleep();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#alive);
    await this.#closeBell();
    clearTimeout(this.#staleTimer);
    this.publishMetrics(true);
    this.#yield.port1.close();
    this.#yield.port2.close();
    try {
      await this.log.close();
    } finally {
      await this.#inner?.close();
    }
  }

  /**
   * Closes the bell once no producer can still be writing to it. A producer thread terminated
   * while ringing never says it is done: after a second the bell is left open (one eventfd),
   * since closing it is what could be unsafe.
   */
  async #closeBell(): Promise<void> {
    if (this.#bell < 0) return;
    const i32 = this.ctl.i32;
    this.#noKernelSleep = true;
    Atomics.store(i32, IntSlot.BELL, 0);
    const giveUp = performance.now() + CLOSE_BELL_WAIT_MS;
    while (Atomics.load(i32, IntSlot.RINGING) !== 0) {
      if (performance.now() >= giveUp) return;
      await new Promise((r) => setTimeout(r, 1));
    }
    try {
      closeBell(this.#bell);
    } catch (e) {
      // A failed close(2) of the eventfd (errnoError): nothing to do about it, and the log must
      // still close.
      if (!(e instanceof PerCoreWalError)) throw e;
    }
  }
}

/** This Worker's global scope (typed here: published modules may not pull in `deno.worker`). */
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

/** Reports an event to the manager's thread, where its `onEvent` is called. */
function _event(event: WalEvent): void {
  scope.postMessage({ type: "event", event });
}

let worker: CoreWorker | undefined;
let running: Promise<void> | undefined;
/** Rings handed out before the log finished opening. */
const early: ProducerRing[] = [];

function _pin(coreId: number): void {
  // Lazy: only a Worker asked to pin loads libc.
  import("../ffi/libc.ts").then(({ libc }) => {
    const cpus = navigator.hardwareConcurrency;
    const mask = new Uint8Array(128);
    const cpu = coreId % cpus;
    mask[cpu >> 3] |= 1 << (cpu & 7);
    libc().sched_setaffinity(0, 128n, mask);
  }).catch(() => {
    // Pinning is a hint: without libc or the permission, the Worker runs unpinned.
  });
}

async function init(m: InitMessage): Promise<void> {
  const config = new PerCoreWalConfig(m.baseDir, m.numCores, m.options);
  const ctl = new Control(m.control);
  if (config.options.pinWorkers) _pin(m.coreId);
  let inner: IoBackend | undefined;
  let backend: IoBackend | undefined;
  let fallbackReason: string | undefined;
  if (m.backendModule !== undefined) {
    const mod = await import(m.backendModule.url) as BackendModule;
    inner = backend = await mod.createBackend({
      coreId: m.coreId,
      data: m.backendModule.data,
      replaceDurabilityOps,
      errorFromData,
    });
  } else if (m.faults !== undefined) {
    const made = createBackend(config.options);
    inner = made.backend;
    backend = new FaultyBackend(inner, m.faults);
    fallbackReason = made.fallbackReason;
  }
  const log = await CoreLog.open(config, m.coreId, {
    backend,
    minEpoch: m.minEpoch,
    // Stop polling for a sync's completion as soon as a producer has appended more, and at
    // once when the Worker sleeps in the kernel: the completion wakes it there.
    completionSpinStop: () => worker?.sleepsInKernel === true || worker?.drained() === false,
    // The run loop polls completions while busy (see CoreWorker.run).
    lazyCompletionWait: true,
    onDurable: (seq, pos) => worker?.publishDurable(seq, pos.segment, pos.offset),
    // The manager reports the fallback once, for every core.
    onEvent: (event) => {
      if (event.type !== "backendFallback") _event(event);
    },
    onFail: (e) => {
      ctl.fail(e);
      scope.postMessage({ type: "failed", error: errorToData(e) });
    },
  }).catch(async (e) => {
    await inner?.close();
    throw e;
  });
  const w = worker = new CoreWorker(log, ctl, new ProducerRing(m.ring), inner, m.idleWaitMs);
  w.rings.push(...early.splice(0));
  const b = ctl.b64;
  const seq = BigInt(log.sequence);
  Atomics.store(b, BigSlot.NEXT_SEQUENCE, seq + 1n);
  Atomics.store(b, BigSlot.DURABLE, BigInt(log.durableSequence));
  Atomics.store(b, BigSlot.SYNC_REQUEST, seq);
  const p = log.position;
  Atomics.store(b, BigSlot.POS_SEGMENT, BigInt(p.segment));
  Atomics.store(b, BigSlot.POS_OFFSET, BigInt(p.offset));
  Atomics.store(b, BigSlot.POS_SEQUENCE, seq);
  const sp = log.syncedPosition;
  Atomics.store(b, BigSlot.SYNCED_SEGMENT, BigInt(sp.segment));
  Atomics.store(b, BigSlot.SYNCED_OFFSET, BigInt(sp.offset));
  w.publishMetrics(true);
  Atomics.store(ctl.i32, IntSlot.STATE, CoreState.Running);
  running = w.run().catch((e) => {
    const err = e instanceof PerCoreWalError
      ? e
      : new PerCoreWalError("Failed", `Core ${m.coreId}'s Worker: ${e}`);
    ctl.fail(err);
    scope.postMessage({ type: "failed", error: errorToData(err) });
  });
  scope.postMessage({
    type: "ready",
    sequence: Number(seq),
    epoch: log.epoch,
    backend: log.backend,
    writeMode: log.writeMode,
    fallbackReason: log.fallbackReason ?? fallbackReason,
  });
}

async function close(): Promise<void> {
  const w = worker;
  let error: ErrorData | undefined;
  if (w !== undefined) {
    w.closing = true;
    Atomics.add(w.ctl.i32, IntSlot.DOORBELL, 1);
    Atomics.notify(w.ctl.i32, IntSlot.DOORBELL);
    await running;
    try {
      await w.close();
    } catch (e) {
      error = errorToData(e);
    }
    if (w.ctl.state !== CoreState.Failed) Atomics.store(w.ctl.i32, IntSlot.STATE, CoreState.Closed);
    w.ctl.wakeAll();
  }
  scope.postMessage({ type: "closed", error });
}

// The Worker's start, before its "init" comes (the manager locks and checks the directory
// meanwhile): what every open needs and the directory plays no part in. The native libraries, and
// a first timer, which costs a Worker about 5 ms (the run loop's timers would pay it in init).
preloadNative();
clearTimeout(setTimeout(() => {}, 0));

scope.onmessage = (e: MessageEvent) => {
  const m = e.data;
  mailRead++;
  switch (m.type) {
    case "init":
      init(m as InitMessage).catch((err) =>
        scope.postMessage({ type: "error", error: errorToData(err) })
      );
      break;
    case "addRing":
      if (worker === undefined) {
        early.push(new ProducerRing(m.ring));
      } else {
        worker.rings.push(new ProducerRing(m.ring));
        Atomics.add(worker.ctl.i32, IntSlot.DOORBELL, 1);
        Atomics.notify(worker.ctl.i32, IntSlot.DOORBELL);
      }
      break;
    case "close":
      close();
      break;
  }
};
