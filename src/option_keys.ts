/**
 * The keys of every options object the module takes, and the one check that refuses an unknown
 * key (`segmentSize` for `segmentSizeBytes` would otherwise be ignored without a word).
 *
 * Each table `satisfies` a record over its interface's keys, so adding an option to an interface
 * without adding it here fails type checking (here, naming the table).
 *
 * @module
 */

import type { CheckpointCoordinatorOptions, CheckpointRunOptions } from "./checkpoint.ts";
import type { PerCoreWalOptions } from "./config.ts";
import type { CoreLogOptions } from "./core_log_options.ts";
import type { ManagerOpenOptions, WalOpenOptions } from "./manager.ts";
import type { MergeOptions } from "./merge_stream.ts";
import type { ReaderOptions } from "./read_result.ts";
import type { RecoveryOptions } from "./recovery_types.ts";
import type { ShipMarksOptions } from "./ship_marks.ts";
import type { WatchOptions, WatchWalOptions } from "./watch.ts";
import type { WriterHandleOptions } from "./writer_handle.ts";
import type { WaitOptions } from "./abort.ts";
import type { AppendWaitOptions } from "./writer.ts";

type Keys<T> = { readonly [K in keyof Required<T>]: true };

const WAL_OPTIONS = {
  segmentPattern: true,
  segmentSizeBytes: true,
  segmentFill: true,
  backend: true,
  writeMode: true,
  ringEntries: true,
  maxBatchBytes: true,
  maxInFlightBatches: true,
  syncDelayMs: true,
  maxRecordBytes: true,
  maxPendingBytes: true,
  fileMode: true,
  allowSymlinks: true,
  sharedBufferBytes: true,
  pinWorkers: true,
} as const satisfies Keys<PerCoreWalOptions>;

const MANAGER_OPEN_OPTIONS = {
  checkpointDir: true,
  faults: true,
  backendModule: true,
  idleWaitMs: true,
  onEvent: true,
} as const satisfies Keys<ManagerOpenOptions>;

/** Every options object the module checks, by what its error message calls it. */
export const OPTION_KEYS = {
  PerCoreWalOptions: WAL_OPTIONS,
  ManagerOpenOptions: MANAGER_OPEN_OPTIONS,
  WalOpenOptions: {
    ...WAL_OPTIONS,
    ...MANAGER_OPEN_OPTIONS,
    cores: true,
  } as const satisfies Keys<WalOpenOptions>,
  CoreLogOptions: {
    backend: true,
    minEpoch: true,
    onDurable: true,
    onFail: true,
    onEvent: true,
    completionSpinStop: true,
    lazyCompletionWait: true,
  } as const satisfies Keys<CoreLogOptions>,
  RecoveryOptions: {
    checkpointDir: true,
    mode: true,
    readOnly: true,
    onEntry: true,
    signal: true,
  } as const satisfies Keys<RecoveryOptions>,
  MergeOptions: {
    fromEpoch: true,
    toEpoch: true,
    // Internal: the manager's durable ends.
    ends: true,
  } as const satisfies Keys<MergeOptions & { ends?: unknown }>,
  ReaderOptions: {
    maxRecordBytes: true,
    isLastSegment: true,
    limitOffset: true,
    startOffset: true,
    startSequence: true,
    laterSegments: true,
    expectedFirstSequence: true,
    readAhead: true,
    liveEnd: true,
  } as const satisfies Keys<ReaderOptions>,
  CheckpointCoordinatorOptions: {
    checkpointDir: true,
    retain: true,
    maxMemoryBytes: true,
  } as const satisfies Keys<CheckpointCoordinatorOptions>,
  CheckpointRunOptions: {
    state: true,
    onStep: true,
    signal: true,
  } as const satisfies Keys<CheckpointRunOptions>,
  WatchOptions: {
    coreId: true,
    from: true,
    signal: true,
  } as const satisfies Keys<WatchOptions>,
  WatchWalOptions: {
    coreId: true,
    from: true,
    signal: true,
    intervalMs: true,
  } as const satisfies Keys<WatchWalOptions>,
  WriterHandleOptions: {
    bufferBytes: true,
  } as const satisfies Keys<WriterHandleOptions>,
  WaitOptions: {
    signal: true,
  } as const satisfies Keys<WaitOptions>,
  AppendWaitOptions: {
    timeoutMs: true,
    signal: true,
  } as const satisfies Keys<AppendWaitOptions>,
  ShipMarksOptions: {
    onEvent: true,
  } as const satisfies Keys<ShipMarksOptions>,
  // Checked against its interface in src/ship/options.ts (kept from here: the core module does
  // not load the NATS client's types).
  ShipToNatsOptions: {
    servers: true,
    node: true,
    stream: true,
    subject: true,
    maxRecordsPerMessage: true,
    maxBytesPerMessage: true,
    lingerMs: true,
    retryMaxMs: true,
    publishTimeoutMs: true,
    intervalMs: true,
    streamConfig: true,
    connection: true,
    retain: true,
    maxUnshippedRecords: true,
    maxUnshippedBytes: true,
    onUnshippedLimit: true,
    onEvent: true,
    signal: true,
  } as const,
  // Checked against its interface in src/ship/read.ts.
  ReadNatsStreamOptions: {
    servers: true,
    node: true,
    stream: true,
    subject: true,
    allowMissingStart: true,
    onGap: true,
    connection: true,
    signal: true,
  } as const,
} as const;

/** The name of an options object of {@linkcode OPTION_KEYS}. */
export type OptionsName = keyof typeof OPTION_KEYS;

/**
 * Throws `TypeError` for `options` that are not an object (undefined passes), or hold a key that
 * `what` does not know: "unknown option segmentSize; did you mean segmentSizeBytes?". Keys whose
 * value is `undefined` are checked too (a misspelt key is misspelt whatever its value).
 */
export function checkOptionKeys(options: unknown, what: OptionsName): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${what} must be an object, got ${options === null ? "null" : typeof options}`,
    );
  }
  const known: Readonly<Record<string, true>> = OPTION_KEYS[what];
  for (const key in options) {
    if (Object.hasOwn(known, key)) continue;
    const near = nearestKey(key, Object.keys(known));
    throw new TypeError(
      `unknown option ${key} in ${what}` + (near === undefined ? "" : `; did you mean ${near}?`),
    );
  }
}

/**
 * The candidate nearest to `key`, or undefined when none is close. Case-insensitive; a name that
 * begins with the key, or with which the key begins (`segmentSize`, `segmentSizeBytes`), is
 * nearer than any other; otherwise the edit distance decides, at most half the longer name.
 */
export function nearestKey(key: string, candidates: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const l = c.toLowerCase();
    const prefix = l.startsWith(k) || k.startsWith(l);
    const d = prefix ? Math.abs(l.length - k.length) : _distance(k, l);
    if (d > Math.ceil(Math.max(k.length, l.length) / 2)) continue;
    // Prefix matches first (below 1), then by distance.
    const score = prefix ? d / (d + 1) : d;
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/** Levenshtein distance (two rows). */
function _distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j] + 1,
        row[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length];
}
