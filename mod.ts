/**
 * A per-core write-ahead log for Deno on Linux io_uring.
 *
 * {@linkcode PerCoreWalManager} runs one Worker per core, each with its own io_uring ring and
 * its own segment files. Producers on any thread append through shared memory (a
 * {@linkcode CoreWalWriter}); the core's Worker writes batches, each made durable by a linked
 * fdatasync (or, up to 128 KiB, by durable `RWF_DSYNC` writes), and acknowledges them in order: `sync()` resolves only when everything appended before it is
 * durable. {@linkcode CheckpointCoordinator} takes checkpoints, {@linkcode recoverPerCore}
 * rebuilds the state after a crash, {@linkcode mergeSegments} streams every entry in order.
 * Where io_uring is not available the same engine writes through `Deno.FsFile`
 * (`backend: "sync"`).
 *
 * Sequences, epochs and positions are numbers; only a record's `timestampNs` is a bigint. The
 * on-disk format (version 3) is described byte by byte in `docs/FORMAT.md`, the guarantees in
 * `docs/GUARANTEES.md`.
 *
 * @example Open, append, sync, checkpoint, recover
 * ```ts
 * import { CheckpointCoordinator, PerCoreWalManager, recoverPerCore } from "@percore/wal";
 *
 * {
 *   await using wal = await PerCoreWalManager.open("./data/wal", { cores: 2 });
 *   const writer = wal.writer(0);
 *   writer.appendPut("user:1", "alice"); // returns the sequence, no await
 *   writer.appendCommit({ kafka: 42 });
 *   await writer.sync(); // both records are durable now
 *   await new CheckpointCoordinator(wal).checkpoint();
 * }
 *
 * using recovered = await recoverPerCore("./data/wal");
 * console.log(recovered.state.get("user:1"), recovered.offsets.get("kafka"));
 * ```
 *
 * @module
 */

export {
  type BackendChoice,
  PerCoreWalConfig,
  type PerCoreWalOptions,
  type ResolvedWalOptions,
  type SegmentFill,
  type WriteMode,
} from "./src/config.ts";
export type { WaitOptions } from "./src/abort.ts";
export { CoreLog } from "./src/core_log.ts";
export type { CoreLogMetrics, CoreLogOptions } from "./src/core_log_options.ts";
export { PerCoreWalError, PerCoreWalErrorCode, type PerCoreWalErrorDetails } from "./src/errors.ts";
export {
  type CoreMetrics,
  type ManagerOpenOptions,
  PerCoreWalManager,
  type WalOpenOptions,
} from "./src/manager.ts";
export type { BackpressureCause, WalEvent } from "./src/events.ts";
export {
  dropUnshipped,
  type PendingGap,
  ShipMarks,
  type ShipMarksOptions,
  type ShipperMarks,
} from "./src/ship_marks.ts";
export { holdAppends } from "./src/ship_hold.ts";
export type { WriterHandleOptions } from "./src/writer_handle.ts";
export { compareEntries, type MergeOptions, mergeSegments } from "./src/merge_stream.ts";
export type { SegmentOffset } from "./src/merge.ts";
export { type AppendWaitOptions, CoreWalWriter, type WriterHandle } from "./src/writer.ts";
export {
  CheckpointCoordinator,
  type CheckpointCoordinatorOptions,
  type CheckpointMetadata,
  type CheckpointPosition,
  type CheckpointRunOptions,
  type CheckpointStep,
} from "./src/checkpoint.ts";
export { PerCoreRecoveryManager, recoverPerCore } from "./src/recovery.ts";
export {
  type CheckpointReport,
  type PerCoreRecoveredState,
  RecoveredState,
  type RecoveryMode,
  type RecoveryOptions,
  type RepairAction,
  type ReplayPosition,
  type SegmentReport,
  type SegmentStatus,
} from "./src/recovery_types.ts";
export { configFromDirectory, type WalMeta } from "./src/wal_meta.ts";
export { type WatchOptions, watchWal, type WatchWalOptions } from "./src/watch.ts";
export {
  FORMAT_VERSION,
  MAX_KEY_BYTES,
  PUT_OVERHEAD_BYTES,
  type SegmentHeader,
} from "./src/format.ts";
export {
  LATENCY_BUCKET_BOUNDS_US,
  type LatencyBuckets,
  type LatencySummary,
} from "./src/histogram.ts";
export type {
  BackendKind,
  IoBackend,
  IoFile,
  OpenFileOptions,
  WritePart,
  WritePurpose,
  WriteSync,
} from "./src/io/backend.ts";
export { PerCoreWalReader } from "./src/reader.ts";
export type { ReaderOptions, ReadResult } from "./src/read_result.ts";
export { type BatchOperationInput, batchRecordBytes } from "./src/batch_record.ts";
export { scanSegment } from "./src/segment_probes.ts";
export type {
  Bytes,
  CheckpointOperation,
  CommitOffsets,
  CommitOperation,
  DeleteOperation,
  EpochBarrierOperation,
  PerCoreWalEntry,
  PutOperation,
  SegmentStats,
  WalOperation,
  WalOperationInput,
  WalPosition,
  WriteModeInUse,
} from "./src/types.ts";
