/**
 * `PerCoreWalManager`: one Worker per core, each owning its ring and segments; producers on
 * any thread append through shared memory.
 *
 * @module
 */

import { PerCoreWalConfig, type PerCoreWalOptions } from "./config.ts";
import type { CoreLogMetrics } from "./core_log_options.ts";
import type { InitMessage } from "./core_worker.ts";
import { type ErrorData, errorFromData } from "./error_data.ts";
import { type WaitOptions, waitSignal } from "./abort.ts";
import { handleBufferBytes, type WriterHandleOptions } from "./writer_handle.ts";
import { PerCoreWalError } from "./errors.ts";
import { checkEventHandler, emitEvent, type WalEvent, type WalEventHandler } from "./events.ts";
import type { BackendKind } from "./io/backend.ts";
import type { FaultPlan } from "./io/faulty.ts";
import { LATENCY_BUCKET_BOUNDS_US, type LatencyBuckets } from "./histogram.ts";
import { lockWalDirectory, unlockWalDirectory, type WalLock } from "./lock.ts";
import { type MergeOptions, mergeSegments } from "./merge_stream.ts";
import { scanSegment } from "./segment_probes.ts";
import { ensureDirectory, isUnstartedSegment, listCoreSegments } from "./segment_files.ts";
import { existingWalLayout, reconcileWalMeta } from "./wal_meta.ts";
import { checkOptionKeys } from "./option_keys.ts";
import {
  footprintBefore,
  noteLockedNames,
  removeCreatedDirectories,
  undoFailedOpen,
} from "./open_undo.ts";
import { toPath } from "./path_arg.ts";
import { barrierMismatch, newestOwnCheckpoint } from "./checkpoint_choice.ts";
import { BigSlot, Control, CoreState, MetricSlot, ProducerRing } from "./shared.ts";
import type { PerCoreWalEntry, SegmentStats, WalPosition, WriteModeInUse } from "./types.ts";
import { CoreWalWriter, type WriterHandle } from "./writer.ts";
import {
  type DurableSource,
  registerBatchWatch,
  watchEntries,
  watchEntryBatches,
  type WatchOptions,
} from "./watch.ts";
import { liveSource } from "./watch_live.ts";

/**
 * Counters of one core, as its Worker last published them.
 *
 * @example
 * ```ts
 * import { type CoreMetrics, PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * for (const m of manager.metrics() as CoreMetrics[]) {
 *   console.log(`core ${m.coreId}: ${m.recordsAppended} records, ${m.queuedRecords} queued`);
 * }
 * ```
 */
export interface CoreMetrics extends CoreLogMetrics {
  /** Records appended by producers and not yet taken in by the Worker. */
  queuedRecords: number;
  /** Whether the core failed. */
  failed: boolean;
  /**
   * Batch latencies (submission to durability) as cumulative counts below each of
   * `LATENCY_BUCKET_BOUNDS_US`, and their sum; published with the percentiles (every 20 ms).
   */
  syncLatencyBuckets: LatencyBuckets;
}

/**
 * Options of {@linkcode PerCoreWalManager.open} that tests use.
 *
 * @example
 * ```ts
 * import { type ManagerOpenOptions, PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * // Tests only: a core Worker blocks at most 5 ms at a time, so a lost wake-up shows as a hang.
 * const options: ManagerOpenOptions = { idleWaitMs: 5 };
 * await using manager = await PerCoreWalManager.open(
 *   new PerCoreWalConfig("./data/faulty", 1, { backend: "sync" }),
 *   options,
 * );
 * ```
 */
export interface ManagerOpenOptions {
  /**
   * Where this WAL's checkpoints are, when not in the default directory (`checkpoints` inside the
   * WAL directory): `open()` checks every core's segments against the newest checkpoint there, as
   * recovery does (a core whose history a checkpoint proves is never started over), and a
   * {@linkcode CheckpointCoordinator} of this manager writes there unless given its own. Give the
   * same directory to recovery (`checkpointDir`). A path or a `file:` URL.
   */
  checkpointDir?: string | URL;
  /**
   * Fault injection (the module's own tests): core id → faults its backend injects. Not part of
   * the public API: hidden from the documentation, its type not exported from `mod.ts`.
   *
   * @ignore
   */
  faults?: Record<number, FaultPlan>;
  /**
   * A backend module for the core Workers (the module's own tests: the power-loss simulator's
   * proxy to its disk model): each core's Worker imports `url` and calls its `createBackend` with
   * `perCore[coreId]` (structured-cloned). Not part of the public API: hidden from the
   * documentation; without it the Workers choose their backend as always.
   *
   * @ignore
   */
  backendModule?: { url: string; perCore: unknown[] };
  /**
   * The longest a core Worker blocks in one wait before its event loop runs (tests only: a
   * long one makes a lost wake-up show as a hang). Default 50 ms.
   */
  idleWaitMs?: number;
  /**
   * Called with what the WAL did or saw ({@linkcode WalEvent}): a backend fallback, a torn tail
   * cut or segments put aside at open, a core that failed, backpressure begun and ended. Called
   * on the thread that opened the manager. Nothing is reported, or printed, without it. An
   * exception it throws is caught (and written to `console.error`): the WAL goes on.
   */
  onEvent?: (event: WalEvent) => void;
}

/**
 * Options of {@linkcode PerCoreWalManager.open} given a directory: the configuration's options,
 * the manager's, and `cores`.
 *
 * @example
 * ```ts
 * import { PerCoreWalManager, type WalOpenOptions } from "@percore/wal";
 *
 * const options: WalOpenOptions = { cores: 2, segmentSizeBytes: 16 * 1024 * 1024 };
 * await using manager = await PerCoreWalManager.open("./data/wal", options);
 * ```
 */
export interface WalOpenOptions extends PerCoreWalOptions, ManagerOpenOptions {
  /**
   * How many cores (1 to 1024). Default: the existing WAL's own (its `wal.json`, or else its
   * segment files); for a new WAL, `navigator.hardwareConcurrency`. Fewer cores than an existing
   * WAL has are refused ("ConfigMismatch").
   */
  cores?: number;
}

/**
 * Core `coreId`'s control block and the manager's `onEvent`, for `holdAppends` (ship_hold.ts)
 * alone: not a method of the public manager. Throws as `writer(coreId)` does for a bad id.
 */
export let _coreAccess: (
  manager: PerCoreWalManager,
  coreId: number,
) => { control: Control; onEvent: WalEventHandler | undefined };

interface Core {
  worker: Worker;
  control: Control;
  writer: CoreWalWriter;
  ring: ProducerRing;
  backend: BackendKind;
  writeMode: WriteModeInUse;
  fallbackReason?: string;
  failure?: PerCoreWalError;
  closed?: (error?: ErrorData) => void;
}

/**
 * The per-core WAL: one Deno Worker per core, each with its own io_uring ring and segment
 * files. Producers on any thread append without locks (shared memory, one atomic add per
 * record); batched writes made durable (fdatasync, or durable writes) give acknowledgements.
 *
 * @example
 * ```ts ignore
 * import { PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * const config = new PerCoreWalConfig("./data/wal", 2);
 * await using manager = await PerCoreWalManager.open(config);
 * manager.writer(0).appendPut("key1", "value1");
 * manager.writer(1).appendPut("key2", "value2");
 * await manager.syncAll();
 * for await (const e of manager.mergeSegments()) { // by (epoch, timestampNs, coreId, sequence)
 *   console.log(e.coreId, e.sequence);
 * }
 * ```
 */
export class PerCoreWalManager {
  /** The configuration. */
  readonly config: PerCoreWalConfig;
  /** The WAL's id (`walId` of its `wal.json`), which its checkpoints record. */
  readonly walId: string;
  /** The checkpoint directory given to `open()` (`checkpointDir`), if any. */
  readonly checkpointDir: string | undefined;
  readonly #cores: Core[];
  readonly #epoch: BigInt64Array;
  readonly #lock: WalLock;
  readonly #onEvent: WalEventHandler | undefined;
  #closing: Promise<void> | undefined;
  #live: DurableSource | undefined;

  static {
    _coreAccess = (manager, coreId) => ({
      control: manager.#core(coreId).control,
      onEvent: manager.#onEvent,
    });
  }

  private constructor(
    config: PerCoreWalConfig,
    cores: Core[],
    epoch: BigInt64Array,
    lock: WalLock,
    walId: string,
    checkpointDir: string | undefined,
    onEvent: WalEventHandler | undefined,
  ) {
    this.config = config;
    this.walId = walId;
    this.checkpointDir = checkpointDir;
    this.#cores = cores;
    // The shipper's reads of this manager's entries, in arrays (`batchWatchOf`).
    registerBatchWatch(this, (options) => {
      this.#checkOpen();
      return watchEntryBatches(this.config, this.#live ??= liveSource(this.#cores), options);
    });
    this.#epoch = epoch;
    this.#lock = lock;
    this.#onEvent = onEvent;
  }

  /**
   * Opens the WAL in directory `dir` (a path or a `file:` URL), as `Deno.openKv(path)` does:
   * creates it, or reopens it with its own core count and segment pattern (a torn tail is cut,
   * sequences and epochs continue). Refused with "Locked" while another manager, in this or
   * another process, holds the directory. A failed open leaves nothing it created behind.
   *
   * @example
   * ```ts ignore
   * import { PerCoreWalManager } from "@percore/wal";
   *
   * await using manager = await PerCoreWalManager.open("./data/wal", { cores: 2 });
   * manager.writer(0).appendPut("user:1", "alice");
   * await manager.syncAll();
   * ```
   */
  static open(dir: string | URL, options?: WalOpenOptions): Promise<PerCoreWalManager>;
  /**
   * Opens the WAL in `config.baseDir`: creates it, or reopens it (a torn tail is cut,
   * sequences and epochs continue). Refused with "Locked" while another manager, in this or
   * another process, holds the directory. A failed open leaves nothing it created behind.
   */
  static open(config: PerCoreWalConfig, options?: ManagerOpenOptions): Promise<PerCoreWalManager>;
  static async open(
    target: string | URL | PerCoreWalConfig,
    options: WalOpenOptions = {},
  ): Promise<PerCoreWalManager> {
    let config: PerCoreWalConfig;
    if (target instanceof PerCoreWalConfig) {
      checkOptionKeys(options, "ManagerOpenOptions");
      config = target;
    } else if (typeof target === "string" || target instanceof URL) {
      checkOptionKeys(options, "WalOpenOptions");
      config = _configOf(toPath(target, "dir"), options);
    } else {
      throw new TypeError("dir must be a string, a file: URL or a PerCoreWalConfig");
    }
    const idle = options.idleWaitMs;
    if (idle !== undefined && !(typeof idle === "number" && idle >= 1 && idle <= 3_600_000)) {
      throw new RangeError(`idleWaitMs must be between 1 and 3600000, got ${String(idle)}`);
    }
    const onEvent = checkEventHandler(options.onEvent);
    const checkpointDir = options.checkpointDir === undefined
      ? undefined
      : toPath(options.checkpointDir, "checkpointDir");
    // The Workers start first: a Worker's own start (its V8 isolate, the module's files) is
    // most of open()'s time, and goes on on its own thread while this one locks and checks.
    // Each waits for its "init", posted only once the directory is locked and checked.
    const epochSab = new SharedArrayBuffer(8);
    const started: ReturnType<typeof _start>[] = [];
    try {
      for (let c = 0; c < config.numCores; c++) started.push(_start(config, c, epochSab, onEvent));
    } catch (e) {
      for (const s of started) s.core.worker.terminate();
      throw e;
    }
    const cores = started.map((s) => s.core);
    const ready = started.map((s) => s.ready);
    // A Worker that never gets its "init" is terminated: its start failing then is no news.
    for (const r of ready) r.catch(() => {});
    const footprint = footprintBefore(config.baseDir);
    let lock: WalLock;
    try {
      ensureDirectory(config.baseDir, config.options);
      lock = lockWalDirectory(config.baseDir, config.options.fileMode);
    } catch (e) {
      for (const core of cores) core.worker.terminate();
      // Without the lock, the files in the directory may be another writer's: only the
      // directories this open created go, and only while empty.
      removeCreatedDirectories(footprint);
      throw e;
    }
    const undo = () => {
      undoFailedOpen(footprint, config);
      unlockWalDirectory(lock);
      removeCreatedDirectories(footprint);
    };
    let walId: string;
    try {
      noteLockedNames(footprint);
      walId = reconcileWalMeta(config).walId;
      // Before any core starts: a core whose history a checkpoint proves is never started over.
      await _refuseLostHistory(config, walId, checkpointDir);
    } catch (e) {
      for (const core of cores) core.worker.terminate();
      undo();
      throw e;
    }
    try {
      for (const s of started) {
        const c = s.core.writer.coreId;
        const mod = options.backendModule;
        s.init(
          options.faults?.[c],
          options.idleWaitMs,
          mod && { url: mod.url, data: mod.perCore[c] },
        );
      }
      const results = await Promise.allSettled(ready);
      const failed = results.find((r) => r.status === "rejected");
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      const epochs = results.map((r) =>
        (r as PromiseFulfilledResult<{ epoch: number }>).value.epoch
      );
      const epoch = new BigInt64Array(epochSab);
      Atomics.store(epoch, 0, BigInt(Math.max(0, ...epochs)));
      const manager = new PerCoreWalManager(
        config,
        cores,
        epoch,
        lock,
        walId,
        checkpointDir,
        onEvent,
      );
      for (const core of cores) manager.#watch(core);
      // Every core chooses the same way: one event.
      const reason = cores[0].fallbackReason;
      if (reason !== undefined) emitEvent(onEvent, { type: "backendFallback", reason });
      return manager;
    } catch (e) {
      await Promise.all(cores.map((c) => _stop(c)));
      undo();
      throw e;
    }
  }

  #watch(core: Core): void {
    core.worker.onmessage = (e: MessageEvent) => {
      const m = e.data;
      if (m.type === "failed") this.#failed(core, errorFromData(m.error) as PerCoreWalError);
      else if (m.type === "event") emitEvent(this.#onEvent, m.event);
      else if (m.type === "closed") core.closed?.(m.error);
    };
    core.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const err = new PerCoreWalError(
        "Failed",
        `Core ${core.writer.coreId}'s Worker crashed: ${e.message}`,
        {
          coreId: core.writer.coreId,
        },
      );
      this.#failed(core, err);
      core.control.fail(err);
      core.closed?.(undefined);
    };
  }

  /** Records a core's first failure, and reports it. */
  #failed(core: Core, error: PerCoreWalError): void {
    if (core.failure !== undefined) return;
    core.failure = error;
    emitEvent(this.#onEvent, { type: "coreFailed", coreId: core.writer.coreId, error });
  }

  #core(coreId: number): Core {
    if (typeof coreId !== "number") {
      throw new TypeError(`core id must be a number, got ${typeof coreId} ${String(coreId)}`);
    }
    const core = Number.isInteger(coreId) ? this.#cores[coreId] : undefined;
    if (core === undefined) {
      throw new PerCoreWalError(
        "InvalidCoreId",
        `Core id ${coreId} is out of range: this WAL has cores 0 to ${this.#cores.length - 1}`,
        { coreId },
      );
    }
    return core;
  }

  /** The writer of core `coreId` for the thread that opened the manager. */
  writer(coreId: number): CoreWalWriter {
    return this.#core(coreId).writer;
  }

  /**
   * A handle through which another Worker of the application appends to core `coreId`: send it
   * with `postMessage` and call `CoreWalWriter.attach(handle)` there. Each handle has its own
   * shared buffer and serves one thread.
   *
   * `options.bufferBytes` sizes that buffer (a power of two from 4096 to 2^30; default
   * `sharedBufferBytes` of the configuration). Its memory is reserved, and committed only as
   * the producer touches it (about 1 MiB while the core's Worker keeps up, more after bursts).
   * A smaller buffer also lowers the largest record this handle appends to what two of fit:
   * `min(maxRecordBytes, bufferBytes / 2 - 8)` (larger ones throw "RecordTooLarge").
   */
  writerHandle(coreId: number, options?: WriterHandleOptions): WriterHandle {
    const core = this.#core(coreId);
    this.#checkOpen();
    const bytes = handleBufferBytes(options, this.config.options.sharedBufferBytes);
    const ring = new ProducerRing(bytes);
    core.control.post(core.worker, { type: "addRing", ring: ring.sab });
    return {
      coreId,
      control: core.control.sab,
      ring: ring.sab,
      epoch: this.#epoch.buffer as SharedArrayBuffer,
      maxRecordBytes: Math.min(this.config.options.maxRecordBytes, ring.size / 2 - 8),
    };
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) {
      throw new PerCoreWalError("Closed", "The WAL manager is closed");
    }
  }

  /** How many cores. */
  get numCores(): number {
    return this.#cores.length;
  }

  /** The current global epoch. */
  get epoch(): number {
    return Number(Atomics.load(this.#epoch, 0));
  }

  /**
   * Moves the global epoch forward by one and returns it. Each core's records take the new
   * epoch from its next epoch barrier on ({@linkcode writeEpochBarrierAll} writes one on every
   * core), so that a barrier separates the epochs of a core however many producers append.
   */
  advanceEpoch(): number {
    this.#checkOpen();
    return Number(Atomics.add(this.#epoch, 0, 1n)) + 1;
  }

  /** Appends a barrier of the current epoch on every core; returns each barrier's sequence. */
  writeEpochBarrierAll(): number[] {
    this.#checkOpen();
    const epoch = this.epoch;
    return this.#cores.map((c) => c.writer.appendEpochBarrier(epoch));
  }

  /**
   * Resolves when everything appended to every core before the call is durable (in parallel).
   * `options.signal` stops the wait (it rejects with the signal's reason; the records still
   * become durable).
   */
  async syncAll(options?: WaitOptions): Promise<void> {
    const signal = waitSignal(options);
    signal?.throwIfAborted();
    this.#checkOpen();
    await Promise.all(this.#cores.map((c) => c.writer.sync({ signal })));
  }

  /** Each core's position after the last record its Worker took in. */
  positions(): WalPosition[] {
    return this.#cores.map((c) => c.writer.position);
  }

  /** Each core's position after its last durable record. */
  syncedPositions(): WalPosition[] {
    return this.#cores.map((c) => c.writer.syncedPosition);
  }

  /** The backend of core 0 (every core chooses the same way). */
  get backend(): BackendKind {
    return this.#cores[0].backend;
  }

  /** Why `backend: "auto"` fell back to the sync backend, if it did. */
  get fallbackReason(): string | undefined {
    return this.#cores[0].fallbackReason;
  }

  /** The error each core failed with (undefined for a healthy core). */
  get failures(): (PerCoreWalError | undefined)[] {
    return this.#cores.map((c) =>
      c.failure ?? (c.control.state === CoreState.Failed ? c.control.error() : undefined)
    );
  }

  /** Counters of every core. */
  metrics(): CoreMetrics[] {
    return this.#cores.map((c, coreId) => {
      const f = c.control.metrics;
      const b = c.control.b64;
      return {
        coreId,
        backend: c.backend,
        writeMode: c.writeMode,
        recordsAppended: f[MetricSlot.RECORDS],
        bytesAppended: f[MetricSlot.BYTES],
        batches: f[MetricSlot.BATCHES],
        fdatasyncs: f[MetricSlot.FDATASYNCS],
        syncLatency: {
          count: f[MetricSlot.LAT_COUNT],
          p50Us: f[MetricSlot.LAT_P50],
          p99Us: f[MetricSlot.LAT_P99],
          maxUs: f[MetricSlot.LAT_MAX],
        },
        inFlightBatches: f[MetricSlot.IN_FLIGHT],
        queuedRecords: Number(
          Atomics.load(b, BigSlot.NEXT_SEQUENCE) - 1n - Atomics.load(b, BigSlot.POS_SEQUENCE),
        ),
        pendingBytes: f[MetricSlot.PENDING_BYTES],
        failed: c.control.state === CoreState.Failed,
        syncLatencyBuckets: {
          counts: Array.from(
            f.subarray(
              MetricSlot.LAT_BUCKETS,
              MetricSlot.LAT_BUCKETS + LATENCY_BUCKET_BOUNDS_US.length,
            ),
          ),
          sumUs: f[MetricSlot.LAT_SUM],
        },
      };
    });
  }

  /** Statistics of every segment of every core, read up to the durable end (the WAL stays open). */
  async segmentStats(): Promise<SegmentStats[]> {
    const out: SegmentStats[] = [];
    for (const { path, last, limit } of this.#segments()) {
      if (isUnstartedSegment(path)) continue;
      const r = await scanSegment(path, {
        maxRecordBytes: this.config.options.maxRecordBytes,
        isLastSegment: last,
        limitOffset: limit,
      });
      out.push(r.stats);
    }
    return out;
  }

  /**
   * Streams every entry durable when iteration starts (after syncing every core), merged across
   * cores by `(epoch, timestampNs, coreId, sequence)`, with memory bounded by the number of
   * cores, like the free function `mergeSegments(dir)`. Reading never changes the files. For an
   * array: `await Array.fromAsync(manager.mergeSegments())`.
   *
   * @example
   * ```ts ignore
   * for await (const entry of manager.mergeSegments()) {
   *   console.log(entry.coreId, entry.sequence, entry.operation.type);
   * }
   * ```
   */
  async *mergeSegments(options: MergeOptions = {}): AsyncGenerator<PerCoreWalEntry> {
    await this.syncAll();
    const ends = this.syncedPositions().map((p) => ({ segment: p.segment, offset: p.offset }));
    yield* mergeSegments(this.config, { ...options, ends });
  }

  /**
   * The same as {@linkcode mergeSegments}.
   *
   * @deprecated Use {@linkcode mergeSegments}, which streams too.
   */
  merged(options: MergeOptions = {}): AsyncGenerator<PerCoreWalEntry> {
    return this.mergeSegments(options);
  }

  /**
   * A live stream of durable entries: every watched core's entries in sequence order, each
   * exactly once, each only once it is durable (never beyond the core's synced position), across
   * segment rotations; entries from before the call are included from `options.from` on (by
   * default from the start of the retained log). Across cores, entries come in the order they
   * were read (arrival), not merged: order by `coreId` and `sequence`. Pull-based: entries are
   * read from the segment files as the reader asks, so a slow reader costs the WAL no memory;
   * one that falls behind a segment a checkpoint retired gets a `PerCoreWalError` with code
   * `Retired`. The stream ends once the manager is closed and everything durable was read;
   * it errors with a core's failure, or with the signal's reason when `options.signal` aborts.
   * Cancelling it (or `break` in `for await`) releases its files and timers.
   *
   * @example
   * ```ts ignore
   * const controller = new AbortController();
   * let next = 1; // resume exactly after the last sequence handled
   * for await (const entry of manager.watch({ coreId: 0, from: { 0: next } })) {
   *   next = Number(entry.sequence) + 1;
   *   if (next > 100) break;
   * }
   * ```
   */
  watch(options: WatchOptions = {}): ReadableStream<PerCoreWalEntry> {
    this.#checkOpen();
    checkOptionKeys(options, "WatchOptions");
    return watchEntries(this.config, this.#live ??= liveSource(this.#cores), options);
  }

  /** Segment files of every core; the current one limited to its durable end. */
  *#segments(): Generator<{ path: string; last: boolean; limit?: number }> {
    const synced = this.syncedPositions();
    for (let c = 0; c < this.#cores.length; c++) {
      for (const s of listCoreSegments(this.config, c)) {
        if (s.index > synced[c].segment) continue; // prepared ahead, not started
        const current = s.index === synced[c].segment;
        yield { path: s.path, last: current, limit: current ? synced[c].offset : undefined };
      }
    }
  }

  /**
   * Drains every core (appends already made are written and made durable), stops the Workers
   * and releases the directory. Appends nothing of its own. Idempotent. Rejects with a core's
   * failure if one failed (after closing everything).
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const c of this.#cores) {
        Atomics.compareExchange(c.control.i32, 0, CoreState.Running, CoreState.Closing);
        // A core a shipper holds closes too (holdAppends never moves it out of Closing).
        Atomics.compareExchange(c.control.i32, 0, CoreState.Held, CoreState.Closing);
      }
      const results = await Promise.all(this.#cores.map((c) => _stop(c)));
      unlockWalDirectory(this.#lock);
      const failure = this.failures.find((f) => f !== undefined) ??
        results.find((e) => e !== undefined);
      if (failure !== undefined) throw failure;
    })();
    return this.#closing;
  }

  /** Closes the manager. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The core Worker's module: `src/core_worker.ts` and its imports bundled into one file
 * (`deno task bundle`; `tests/worker_bundle_test.ts` fails when the file is not what the sources
 * give). One file instead of some fifty modules shortens each Worker's start, which is most of
 * `open()`'s time (`bench/worker_start.ts`). Deno ends the whole process (no `error` event) when
 * a Worker's module cannot be read for lack of permission, so a local module's read permission
 * is checked first.
 */
function _workerUrl(): URL {
  const url = new URL("./core_worker.bundle.js", import.meta.url);
  if (url.protocol === "file:") {
    // The module's whole directory must be readable (the Worker's bundle lies in it).
    const root = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
    if (Deno.permissions.querySync({ name: "read", path: root }).state !== "granted") {
      throw new PerCoreWalError(
        "Unsupported",
        `The core Workers load the module's files from "${root}", which Deno may not read: ` +
          `add it to --allow-read (for example --allow-read=<wal dir>,${root})`,
        { operation: "new Worker" },
      );
    }
  }
  return url;
}

/**
 * The configuration of `PerCoreWalManager.open(dir, options)`: `options.cores`, else the existing
 * WAL's core count, else the machine's; the existing WAL's segment pattern unless one is given.
 * Reads only: creates nothing.
 */
function _configOf(dir: string, options: WalOpenOptions): PerCoreWalConfig {
  const {
    cores,
    faults: _f,
    backendModule: _b,
    idleWaitMs: _i,
    onEvent: _e,
    checkpointDir: _d,
    ...walOptions
  } = options;
  if (dir.length === 0) throw new TypeError("dir must be a non-empty path");
  if (cores !== undefined && !(Number.isInteger(cores) && cores >= 1 && cores <= 1024)) {
    throw new RangeError(`cores must be an integer between 1 and 1024, got ${String(cores)}`);
  }
  const layout = existingWalLayout(dir, walOptions.segmentPattern);
  const numCores = cores ?? layout?.numCores ??
    Math.min(1024, Math.max(1, navigator.hardwareConcurrency || 1));
  return new PerCoreWalConfig(dir, numCores, {
    ...walOptions,
    segmentPattern: walOptions.segmentPattern ?? layout?.segmentPattern,
  });
}

/**
 * Starts core `coreId`'s Worker and its shared memory; `init` later hands it the WAL to open,
 * and `ready` settles when it has (or could not).
 */
function _start(
  config: PerCoreWalConfig,
  coreId: number,
  epoch: SharedArrayBuffer,
  onEvent?: WalEventHandler,
) {
  const control = new Control();
  const ring = new ProducerRing(config.options.sharedBufferBytes);
  ring.claim();
  const worker = new Worker(_workerUrl(), { type: "module" });
  const writer = new CoreWalWriter({
    coreId,
    control: control.sab,
    ring: ring.sab,
    epoch,
    maxRecordBytes: config.options.maxRecordBytes,
  }, false);
  const core: Core = { worker, control, writer, ring, backend: "sync", writeMode: "buffered" };
  const ready = new Promise<{ epoch: number }>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent) => {
      const m = e.data;
      if (m.type === "ready") {
        core.backend = m.backend;
        core.writeMode = m.writeMode;
        core.fallbackReason = m.fallbackReason;
        resolve(m);
      } else if (m.type === "event") {
        emitEvent(onEvent, m.event);
      } else if (m.type === "error") {
        reject(errorFromData(m.error));
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      reject(
        new PerCoreWalError("Failed", `Core ${coreId}'s Worker failed to start: ${e.message}`, {
          coreId,
        }),
      );
    };
  });
  const init = (
    faults?: FaultPlan,
    idleWaitMs?: number,
    backendModule?: InitMessage["backendModule"],
  ) => {
    const m: InitMessage = {
      type: "init",
      baseDir: config.baseDir,
      numCores: config.numCores,
      options: { ...config.options },
      coreId,
      control: control.sab,
      epoch,
      ring: ring.sab,
      minEpoch: 0,
      faults,
      backendModule,
      idleWaitMs,
    };
    control.post(worker, m);
  };
  return { core, ready, init };
}

/** Asks a core's Worker to drain and close, then terminates it; resolves with its close error. */
function _stop(core: Core): Promise<PerCoreWalError | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (error?: ErrorData) => {
      if (done) return;
      done = true;
      core.worker.terminate();
      resolve(error === undefined ? undefined : errorFromData(error) as PerCoreWalError);
    };
    core.closed = finish;
    const prev = core.worker.onmessage;
    core.worker.onmessage = (e: MessageEvent) => {
      if (e.data?.type === "closed") finish(e.data.error);
      else prev?.call(core.worker, e);
    };
    try {
      core.control.post(core.worker, { type: "close" });
    } catch {
      // Whatever a Worker that is already gone throws here, it cannot answer: nothing is left
      // to wait for, and its failure, if any, was reported when it happened.
      finish();
    }
  });
}

/**
 * Refuses ("Corrupted") to open a WAL whose newest checkpoint (of this WAL, in `checkpointDir`
 * when given, else in the default checkpoint directory or the old default) names, for some core, a barrier its segments do not
 * hold: no segments, or no barrier of that sequence at that position (the segments end below it,
 * or are another log), as recovery's own barrier check would find. Opening would start the core
 * over at sequence 1 (or go on beside the checkpoint), and recovery would then serve the
 * checkpoint's stale state or refuse the new records for good. Reads only; changes nothing.
 */
async function _refuseLostHistory(
  config: PerCoreWalConfig,
  walId: string,
  checkpointDir: string | undefined,
): Promise<void> {
  const ckpt = newestOwnCheckpoint(config.baseDir, walId, checkpointDir);
  if (ckpt === undefined) return;
  for (const at of ckpt.walPositions) {
    // A core beyond numCores has no segments (reconcileWalMeta refused it otherwise).
    const segs = at.coreId < config.numCores ? listCoreSegments(config, at.coreId) : [];
    const wrong = segs.length === 0 ? "" : await barrierMismatch(config, at, ckpt.epoch);
    if (wrong === undefined) continue;
    const has = `${await _segmentsEnd(config, segs)}${wrong === "" ? "" : ` (${wrong})`}`;
    throw new PerCoreWalError(
      "Corrupted",
      `Core ${at.coreId} of WAL "${config.baseDir}" lost its history: checkpoint "${ckpt.path}" ` +
        `(epoch ${ckpt.epoch}) says its log goes on with the barrier of sequence ${at.sequence} ` +
        `in segment ${at.segment}, but ${has}; restore the core's segments (nothing was changed)`,
      { coreId: at.coreId, segment: config.segmentPath(at.coreId, at.segment) },
    );
  }
}

/** Where a core's segments end, in words, for an error message. */
async function _segmentsEnd(
  config: PerCoreWalConfig,
  segs: { index: number; path: string }[],
): Promise<string> {
  for (let i = segs.length - 1; i >= 0; i--) {
    let r;
    try {
      r = await scanSegment(segs[i].path, {
        maxRecordBytes: config.options.maxRecordBytes,
        isLastSegment: i === segs.length - 1,
        laterSegments: segs.slice(i + 1).map((s) => s.path),
      });
    } catch (e) {
      if (!(e instanceof PerCoreWalError)) throw e;
      return `segment ${segs[i].index} cannot be read: ${e.message}`;
    }
    if (r.header === undefined) continue;
    // Without records, the header's first sequence - 1: what the earlier segments held.
    if (r.stats.lastSequence > 0) return `its segments end at sequence ${r.stats.lastSequence}`;
  }
  return "it has no segment with a record";
}
