/**
 * The public data types: operations, entries, segment statistics.
 *
 * @module
 */

/** Bytes, or a string that is encoded as UTF-8. */
export type Bytes = Uint8Array | string;

/** Source offsets of a `commit`: a plain object or a Map from source name to offset. */
export type CommitOffsets = Record<string, bigint> | Map<string, bigint>;

/** A `put` of a key to a value. */
export interface PutOperation {
  /** Discriminant. */
  type: "put";
  /** The key (at most 65,535 bytes). */
  key: Uint8Array;
  /** The value. */
  value: Uint8Array;
}

/** A `delete` of a key. */
export interface DeleteOperation {
  /** Discriminant. */
  type: "delete";
  /** The key (at most 65,535 bytes). */
  key: Uint8Array;
}

/** A marker that the application took checkpoint `id`. */
export interface CheckpointOperation {
  /** Discriminant. */
  type: "checkpoint";
  /** The checkpoint id (u64). */
  id: bigint;
}

/** Source offsets (and an optional watermark) committed together with the state. */
export interface CommitOperation {
  /** Discriminant. */
  type: "commit";
  /** Source name to offset (u64), in the order they were given. */
  offsets: Map<string, bigint>;
  /** An event-time watermark (i64), if one was given. */
  watermark?: bigint;
}

/** A barrier that closes `epoch` on this core: every later record has a greater epoch. */
export interface EpochBarrierOperation {
  /** Discriminant. */
  type: "epochBarrier";
  /** The epoch the barrier closes (u64). */
  epoch: bigint;
}

/** An operation as it is stored and read back. */
export type WalOperation =
  | PutOperation
  | DeleteOperation
  | CheckpointOperation
  | CommitOperation
  | EpochBarrierOperation;

/** An operation as `append(op)` accepts it: strings for bytes, a plain object for offsets. */
export type WalOperationInput =
  | { type: "put"; key: Bytes; value: Bytes }
  | { type: "delete"; key: Bytes }
  | { type: "checkpoint"; id: bigint | number }
  | { type: "commit"; offsets: CommitOffsets; watermark?: bigint | number }
  | { type: "epochBarrier"; epoch?: bigint | number };

/** One record read back from a core's log. */
export interface PerCoreWalEntry {
  /** The core that wrote it. */
  coreId: number;
  /** The epoch it belongs to. */
  epoch: bigint;
  /** Its per-core sequence (strictly increasing by 1 within a core). */
  sequence: bigint;
  /** Wall-clock time of the append in nanoseconds since the Unix epoch, never decreasing per core. */
  timestampNs: bigint;
  /** What it records. */
  operation: WalOperation;
}

/** Statistics of one segment file, from a full validating scan. */
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
  /** How many valid records the segment holds. */
  entryCount: number;
  /** Sequence of the first record, or the header's first sequence when there is none. */
  firstSequence: bigint;
  /** Sequence of the last record, or `firstSequence - 1` when there is none. */
  lastSequence: bigint;
  /** Smallest epoch of a record (the header's epoch when there is none). */
  minEpoch: bigint;
  /** Largest epoch of a record (the header's epoch when there is none). */
  maxEpoch: bigint;
}
