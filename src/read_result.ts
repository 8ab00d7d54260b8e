/**
 * What a segment reader takes and returns: its options, and what each read found (an entry, the
 * end, a torn tail or corruption). Apart from the reader so that the damage classification and
 * the probes share them without importing it.
 *
 * @module
 */

import type { PerCoreWalEntry } from "./types.ts";

/**
 * What {@linkcode PerCoreWalReader.readNext} found.
 *
 * @example
 * ```ts
 * import { PerCoreWalReader, type ReadResult } from "@percore/wal";
 *
 * await using reader = await PerCoreWalReader.open("./data/wal/wal-0-000000.log");
 * let r: ReadResult;
 * while ((r = await reader.readNext()).kind === "entry") console.log(r.entry.sequence);
 * console.log("ended with", r.kind);
 * ```
 */
export type ReadResult =
  | {
    /** A valid record. */
    kind: "entry";
    /** The decoded record. */
    entry: PerCoreWalEntry;
    /** Its offset in the file. */
    offset: number;
    /** Its length, padding included. */
    length: number;
  }
  | {
    /** No more records: the file ends, or only zeros (preallocated space) follow. */
    kind: "end";
    /** Where the records end. */
    offset: number;
    /** Zero bytes from `offset` to the end of the file. */
    preallocatedBytes: number;
  }
  | {
    /** An incomplete or damaged last record followed only by zeros or nothing: a torn write. */
    kind: "torn";
    /** Where the torn record starts (the end of the valid records). */
    offset: number;
    /** What is wrong with it. */
    reason: string;
  }
  | {
    /** A damaged record followed by a valid one, or damage in a segment that is not the last. */
    kind: "corrupted";
    /** Where the damaged record starts. */
    offset: number;
    /** What is wrong with it. */
    reason: string;
    /** "ChecksumMismatch" or "Corrupted". */
    code: "ChecksumMismatch" | "Corrupted";
    /** Offset of the first valid record after the damage, when there is one. */
    resumeAt?: number;
  };

/**
 * Options of {@linkcode PerCoreWalReader.open}.
 *
 * @example
 * ```ts
 * import { PerCoreWalReader, type ReaderOptions } from "@percore/wal";
 *
 * const options: ReaderOptions = { startSequence: 1000, isLastSegment: true };
 * await using reader = await PerCoreWalReader.open("./data/wal/wal-0-000003.log", options);
 * for await (const entry of reader) console.log(entry.sequence);
 * ```
 */
export interface ReaderOptions {
  /** Largest record accepted; must match the writer's. Default 16 MiB. */
  maxRecordBytes?: number;
  /**
   * Whether this is its core's last segment. Damage at the end of a segment that is not the
   * last is corruption, not a torn tail. Default true.
   */
  isLastSegment?: boolean;
  /**
   * Read as if the file ended here: for a segment in use, its durable end (bytes after it may
   * be in flight). Default: the file's size.
   */
  limitOffset?: number;
  /** Start reading at this offset (a record boundary) instead of the first record. */
  startOffset?: number;
  /** The sequence of the record at `startOffset` (default: the header's first sequence). */
  startSequence?: number;
  /**
   * The core's segments after this one (paths, by index). In a version 2 segment that is not the
   * last, damage that no batch marker here or in these segments proves acknowledged is a torn
   * tail (batches of a rotation in flight), not corruption. Without them such damage is
   * corruption.
   */
  laterSegments?: string[];
  /**
   * The sequence this segment must start at (the previous segment's last + 1), when known. With
   * `laterSegments`, lets a segment whose header block is zero but that holds data be a crash
   * tail although it is not the last (two rotations in flight).
   */
  expectedFirstSequence?: number;
  /**
   * The segment is being written (by this or another process) and is read to where its records
   * end so far: the first bytes that do not validate end the records, reported as `end` (with
   * `preallocatedBytes` 0), without classifying what follows, which a write in flight cannot be
   * told from damage by (nor should every look at a live segment scan its preallocated space).
   * For followers that look again later (`watchWal`); never for recovery. Default false.
   */
  liveEnd?: boolean;
  /**
   * Read the next 1 MiB while the records before it are decoded (for sequential scans). Close
   * such a reader with `closeAsync()`, which waits for a read in flight. Default false.
   */
  readAhead?: boolean;
}
