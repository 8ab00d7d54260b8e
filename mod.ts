/**
 * A per-core write-ahead log for Deno on Linux io_uring.
 *
 * Each core's log ({@linkcode CoreLog}) owns its own segment files and its own io_uring ring.
 * Appends encode records (CRC32C, epoch, per-core sequence, timestamp) into a batch buffer;
 * batches are written with a linked fdatasync, several in flight, and acknowledged in order:
 * `sync()` resolves only when everything appended before it is durable. Where io_uring is not
 * available the same engine writes through `Deno.FsFile` (`backend: "sync"`).
 *
 * The on-disk format (version 2) is described byte by byte in `docs/FORMAT.md`.
 *
 * @example Append, sync, read back
 * ```ts ignore
 * import { CoreLog, PerCoreWalConfig, PerCoreWalReader } from "@percore/wal";
 *
 * const config = new PerCoreWalConfig("./data/wal", 1);
 * await using log = await CoreLog.open(config, 0);
 * const seq = log.appendPut("user:1", "alice");
 * log.appendCommit({ kafka: 42n });
 * await log.sync(); // both records are durable now
 * console.log(seq, log.backend);
 *
 * await using reader = await PerCoreWalReader.open(config.segmentPath(0, 0));
 * for await (const entry of reader) console.log(entry.sequence, entry.operation.type);
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
export { CoreLog } from "./src/core_log.ts";
export type { CoreLogMetrics, CoreLogOptions } from "./src/core_log_options.ts";
export { PerCoreWalError, PerCoreWalErrorCode, type PerCoreWalErrorDetails } from "./src/errors.ts";
export {
  type CoreMetrics,
  type ManagerOpenOptions,
  PerCoreWalManager,
  type WalOpenOptions,
} from "./src/manager.ts";
export type { WalEvent } from "./src/events.ts";
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
} from "./src/io/backend.ts";
export { PerCoreWalReader } from "./src/reader.ts";
export type { ReaderOptions, ReadResult } from "./src/read_result.ts";
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
