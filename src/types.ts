/**
 * The public data types: operations, entries, segment statistics.
 *
 * One rule for numbers: every sequence, epoch, position (segment index, byte offset), checkpoint
 * id, commit offset, watermark, count and size, in every input and output, is a `number` that is
 * a safe integer (at most `Number.MAX_SAFE_INTEGER`, 2^53 - 1); a `bigint` or any other
 * non-number is refused with a `TypeError`, a fraction, a negative value (but a watermark) or a
 * value above 2^53 - 1 with a `RangeError`. The one exception is a record's `timestampNs` (and a
 * segment header's `createdAtNs`), a `bigint`, because nanoseconds since 1970 exceed 2^53. On
 * disk these values stay u64 (FORMAT.md); a decoded u64 above 2^53 - 1 is refused as corrupt,
 * never rounded.
 *
 * @module
 */

/**
 * Bytes, or a string that is encoded as UTF-8.
 *
 * @example
 * ```ts
 * import type { Bytes } from "@percore/wal";
 *
 * const asText: Bytes = "user:1";
 * const asBytes: Bytes = new Uint8Array([0xca, 0xfe]);
 * console.log(asText, asBytes);
 * ```
 */
export type Bytes = Uint8Array | string;

/**
 * Source offsets of a `commit`: a plain object or a Map from source name to offset.
 *
 * @example
 * ```ts
 * import { type CommitOffsets, PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const offsets: CommitOffsets = { "kafka:events/0": 1200, "kafka:events/1": 877 };
 * manager.writer(0).appendCommit(offsets, 1_700_000_000_000);
 * ```
 */
export type CommitOffsets = Record<string, number> | Map<string, number>;

/**
 * A `put` of a key to a value.
 *
 * @example
 * ```ts
 * import type { PerCoreWalEntry, PutOperation } from "@percore/wal";
 *
 * function putOf(entry: PerCoreWalEntry): PutOperation | undefined {
 *   return entry.operation.type === "put" ? entry.operation as PutOperation : undefined;
 * }
 * ```
 */
export interface PutOperation {
  /** Discriminant. */
  type: "put";
  /** The key (at most 65,535 bytes). */
  key: Uint8Array;
  /** The value. */
  value: Uint8Array;
}

/**
 * A `delete` of a key.
 *
 * @example
 * ```ts
 * import type { DeleteOperation, PerCoreWalEntry } from "@percore/wal";
 *
 * function deletedKey(entry: PerCoreWalEntry): Uint8Array | undefined {
 *   const op = entry.operation;
 *   return op.type === "delete" ? (op as DeleteOperation).key : undefined;
 * }
 * ```
 */
export interface DeleteOperation {
  /** Discriminant. */
  type: "delete";
  /** The key (at most 65,535 bytes). */
  key: Uint8Array;
}

/**
 * A marker that the application took checkpoint `id`.
 *
 * @example
 * ```ts
 * import type { CheckpointOperation, PerCoreWalEntry } from "@percore/wal";
 *
 * function checkpointId(entry: PerCoreWalEntry): number | undefined {
 *   const op = entry.operation;
 *   return op.type === "checkpoint" ? (op as CheckpointOperation).id : undefined;
 * }
 * ```
 */
export interface CheckpointOperation {
  /** Discriminant. */
  type: "checkpoint";
  /** The checkpoint id (a safe integer; a u64 on disk). */
  id: number;
}

/**
 * Source offsets (and an optional watermark) committed together with the state.
 *
 * @example
 * ```ts
 * import type { CommitOperation, PerCoreWalEntry } from "@percore/wal";
 *
 * function offsetOf(entry: PerCoreWalEntry, source: string): number | undefined {
 *   const op = entry.operation;
 *   return op.type === "commit" ? (op as CommitOperation).offsets.get(source) : undefined;
 * }
 * ```
 */
export interface CommitOperation {
  /** Discriminant. */
  type: "commit";
  /** Source name to offset (a safe integer; a u64 on disk), in the order they were given. */
  offsets: Map<string, number>;
  /** An event-time watermark (a safe integer, may be negative; an i64 on disk), if given. */
  watermark?: number;
}

/**
 * A barrier that closes `epoch` on this core: every later record has a greater epoch.
 *
 * @example
 * ```ts
 * import type { EpochBarrierOperation, PerCoreWalEntry } from "@percore/wal";
 *
 * function barrierEpoch(entry: PerCoreWalEntry): number | undefined {
 *   const op = entry.operation;
 *   return op.type === "epochBarrier" ? (op as EpochBarrierOperation).epoch : undefined;
 * }
 * ```
 */
export interface EpochBarrierOperation {
  /** Discriminant. */
  type: "epochBarrier";
  /** The epoch the barrier closes. */
  epoch: number;
}

/**
 * An operation as it is stored and read back.
 *
 * @example
 * ```ts
 * import type { PerCoreWalEntry, WalOperation } from "@percore/wal";
 *
 * function describe(entry: PerCoreWalEntry): string {
 *   const op: WalOperation = entry.operation;
 *   switch (op.type) {
 *     case "put":
 *       return `put ${op.key.length}-byte key`;
 *     case "delete":
 *       return "delete";
 *     default:
 *       return op.type;
 *   }
 * }
 * ```
 */
export type WalOperation =
  | PutOperation
  | DeleteOperation
  | CheckpointOperation
  | CommitOperation
  | EpochBarrierOperation;

/**
 * An operation as `append(op)` accepts it: strings for bytes, a plain object for offsets.
 *
 * @example
 * ```ts
 * import { PerCoreWalConfig, PerCoreWalManager, type WalOperationInput } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const ops: WalOperationInput[] = [
 *   { type: "put", key: "user:1", value: "alice" },
 *   { type: "delete", key: "user:2" },
 *   { type: "commit", offsets: { source: 10 } },
 * ];
 * for (const op of ops) manager.writer(0).append(op);
 * ```
 */
export type WalOperationInput =
  | { type: "put"; key: Bytes; value: Bytes }
  | { type: "delete"; key: Bytes }
  | { type: "checkpoint"; id: number }
  | { type: "commit"; offsets: CommitOffsets; watermark?: number }
  | { type: "epochBarrier"; epoch?: number };

/**
 * One record read back from a core's log.
 *
 * @example
 * ```ts
 * import { mergeSegments, type PerCoreWalEntry } from "@percore/wal";
 *
 * for await (const entry of mergeSegments("./data/wal")) {
 *   const e: PerCoreWalEntry = entry;
 *   console.log(e.coreId, e.sequence, e.epoch, e.timestampNs, e.operation.type);
 * }
 * ```
 */
export interface PerCoreWalEntry {
  /** The core that wrote it. */
  coreId: number;
  /** The epoch it belongs to. */
  epoch: number;
  /** Its per-core sequence (strictly increasing by 1 within a core). */
  sequence: number;
  /**
   * Wall-clock time of the append in nanoseconds since the Unix epoch, never decreasing per core.
   * The one `bigint` of the API: nanoseconds since 1970 exceed 2^53.
   */
  timestampNs: bigint;
  /** What it records. */
  operation: WalOperation;
  /**
   * Set on the entries of an atomic batch (`appendBatch`): the sequence of the batch's last
   * entry. Its entries share epoch and timestamp and are consecutive, from the first whose
   * predecessor is not of the batch to the one whose `sequence` equals `batchLast`.
   */
  batchLast?: number;
}

/**
 * Statistics of one segment file, from a full validating scan.
 *
 * @example
 * ```ts
 * import { PerCoreWalConfig, PerCoreWalManager, type SegmentStats } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const stats: SegmentStats[] = await manager.segmentStats();
 * for (const s of stats) console.log(s.path, s.entryCount, s.firstSequence, s.lastSequence);
 * ```
 */
export interface SegmentStats {
  /** The core that owns the segment. */
  coreId: number;
  /** The file's path. */
  path: string;
  /** The segment's index within its core. */
  segmentIndex: number;
  /** The file's size, preallocated bytes included. */
  fileSizeBytes: number;
  /** End of the last valid record, its padding included (the data start when there is none). */
  validEndOffset: number;
  /** How many valid entries the segment holds (an atomic batch counts one per operation). */
  entryCount: number;
  /** Sequence of the first record, or the header's first sequence when there is none. */
  firstSequence: number;
  /** Sequence of the last record, or `firstSequence - 1` when there is none. */
  lastSequence: number;
  /** Smallest epoch of a record (the header's epoch when there is none). */
  minEpoch: number;
  /** Largest epoch of a record (the header's epoch when there is none). */
  maxEpoch: number;
}

/**
 * The write mode a core's log runs with, once `writeMode: "auto"` has been decided: O_DIRECT
 * with an fdatasync per batch, O_DIRECT|O_DSYNC, or through the page cache.
 *
 * @example
 * ```ts
 * import { CoreLog, PerCoreWalConfig, type WriteModeInUse } from "@percore/wal";
 *
 * await using log = await CoreLog.open(new PerCoreWalConfig("./data/engine", 1), 0);
 * const mode: WriteModeInUse = log.writeMode;
 * console.log(mode);
 * ```
 */
export type WriteModeInUse = "direct" | "dsync" | "buffered";

/**
 * A place in a core's log: after the record `sequence`, at `offset` of segment `segment`.
 *
 * @example
 * ```ts
 * import { PerCoreWalConfig, PerCoreWalManager, type WalPosition } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * await manager.syncAll();
 * const durable: WalPosition[] = manager.syncedPositions();
 * console.log(durable.map((p) => `segment ${p.segment} offset ${p.offset} seq ${p.sequence}`));
 * ```
 */
export interface WalPosition {
  /** Segment index. */
  segment: number;
  /** Byte offset in that segment where the next record goes. */
  offset: number;
  /** Sequence of the last record before this position (0 when none). */
  sequence: number;
}
