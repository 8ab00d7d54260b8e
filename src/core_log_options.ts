/**
 * What one core's engine (`core_log.ts`) is opened with and reports: its options beyond the
 * configuration, and its counters.
 *
 * @module
 */

import type { PerCoreWalError } from "./errors.ts";
import type { WalEvent } from "./events.ts";
import type { LatencySummary } from "./histogram.ts";
import type { BackendKind, IoBackend } from "./io/backend.ts";
import type { WalPosition, WriteModeInUse } from "./types.ts";

/**
 * Counters of one core's engine.
 *
 * @example
 * ```ts
 * import { CoreLog, type CoreLogMetrics, PerCoreWalConfig } from "@percore/wal";
 *
 * await using log = await CoreLog.open(new PerCoreWalConfig("./data/engine", 1), 0);
 * const m: CoreLogMetrics = log.metrics();
 * console.log(m.recordsAppended, m.fdatasyncs, m.syncLatency.p99Us);
 * ```
 */
export interface CoreLogMetrics {
  /** The core. */
  coreId: number;
  /** The backend writing its segments. */
  backend: BackendKind;
  /** The write mode in use. */
  writeMode: WriteModeInUse;
  /** Records appended since open. */
  recordsAppended: number;
  /** Record bytes appended since open (padding excluded). */
  bytesAppended: number;
  /** Batches submitted. */
  batches: number;
  /**
   * fdatasyncs submitted: 0 with O_DSYNC, and none for a batch of at most 128 KiB in `"direct"`
   * mode, whose writes are durable themselves (`RWF_DSYNC`).
   */
  fdatasyncs: number;
  /** Time from a batch's submission to its durability. */
  syncLatency: LatencySummary;
  /** Batches submitted and not yet durable. */
  inFlightBatches: number;
  /** Appended bytes not yet durable. */
  pendingBytes: number;
}

/**
 * Options of {@linkcode CoreLog.open} beyond the configuration.
 *
 * @example
 * ```ts
 * import { CoreLog, type CoreLogOptions, PerCoreWalConfig } from "@percore/wal";
 *
 * const options: CoreLogOptions = {
 *   onDurable: (sequence) => console.log(`durable through ${sequence}`),
 *   onFail: (error) => console.error(error.code, error.message),
 * };
 * await using log = await CoreLog.open(new PerCoreWalConfig("./data/engine", 1), 0, options);
 * ```
 */
export interface CoreLogOptions {
  /** Write through this backend instead of creating one (the caller closes it). */
  backend?: IoBackend;
  /** Start at least at this epoch. */
  minEpoch?: number;
  /** Called after each acknowledgement with the last durable sequence and position. */
  onDurable?: (sequence: number, position: WalPosition) => void;
  /** Called once if the core fails (a write or fdatasync error). */
  onFail?: (error: PerCoreWalError) => void;
  /**
   * Called with what the log did at open ({@linkcode WalEvent}): a backend fallback, a torn
   * tail cut, segments put aside. An exception it throws is caught (`console.error`).
   */
  onEvent?: (event: WalEvent) => void;
  /**
   * For the io_uring backend this creates: ends its bounded poll for a sync's completion when
   * this returns true (producer work is waiting).
   */
  completionSpinStop?: () => boolean;
  /**
   * For the io_uring backend this creates: the caller promises to call `pollCompletions()`
   * while it is busy and `setOwnerIdle(true)` before it waits for anything (the core Worker
   * does); completions then wake a thread only while it is idle. Default false.
   */
  lazyCompletionWait?: boolean;
}
