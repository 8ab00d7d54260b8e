/**
 * Probes of whole segments built on the reader: a segment's statistics and how its records end,
 * the acknowledged sequence that a core's batch markers claim, and the decision table asked with
 * those claims read only when a row needs them.
 *
 * @module
 */

import {
  decideSegmentEnd,
  decideSegmentStart,
  type Decision,
  endNeedsClaim,
  type SegmentEndFacts,
  type SegmentStartFacts,
  startNeedsClaim,
} from "./damage_table.ts";
import { PerCoreWalError } from "./errors.ts";
import type { SegmentHeader } from "./format.ts";
import type { ReaderOptions, ReadResult } from "./read_result.ts";
import { PerCoreWalReader } from "./reader.ts";
import { anyLaidOut, isEmptyFile, isUnstartedSegment } from "./segment_files.ts";
import type { SegmentStats } from "./types.ts";

/**
 * The first sequence a segment's header names, or undefined when it has no valid header (yet: a
 * segment being started), or cannot be read as a segment.
 */
export async function headerFirstSequence(
  path: string,
  maxRecordBytes: number,
): Promise<number | undefined> {
  try {
    using r = await PerCoreWalReader.open(path, { maxRecordBytes });
    return r.header?.firstSequence;
  } catch (e) {
    if (e instanceof PerCoreWalError) return undefined;
    throw e;
  }
}

/**
 * Scans a whole segment: its statistics and how its records end.
 *
 * @example
 * ```ts
 * import { scanSegment } from "@percore/wal";
 *
 * const { stats, end } = await scanSegment("./data/wal/wal-0-000000.log", { isLastSegment: true });
 * console.log(`${stats.entryCount} entries, sequences ${stats.firstSequence}..${stats.lastSequence}`);
 * console.log("ends with", end.kind);
 * ```
 */
export async function scanSegment(
  path: string,
  options: ReaderOptions = {},
): Promise<
  {
    stats: SegmentStats;
    end: Exclude<ReadResult, { kind: "entry" }>;
    header?: SegmentHeader;
    lastTimestampNs: bigint;
  }
> {
  using reader = await PerCoreWalReader.open(path, options);
  let r = await reader.readNext();
  while (r.kind === "entry") r = await reader.readNext();
  return {
    stats: reader.stats,
    end: r,
    header: reader.header,
    lastTimestampNs: reader.lastTimestampNs,
  };
}

/**
 * The largest acknowledged sequence that the batch markers of these segments (a core's, by
 * index) claim (0 when none). A segment with a zero header but data cannot be checked (the salt
 * is in the header) and claims nothing: its first batch never completed, so none of its records
 * was acknowledged, and its claims are lost with its header (FORMAT.md, section 8, limits).
 */
export async function acknowledgedClaim(paths: string[], maxRecordBytes: number): Promise<number> {
  let claim = 0;
  const started = paths.filter((p) => !isUnstartedSegment(p));
  for (const path of started) {
    using r = await PerCoreWalReader.open(path, { maxRecordBytes, isLastSegment: true });
    if (r.header === undefined) continue;
    let x = await r.readNext();
    while (x.kind === "entry") x = await r.readNext();
    claim = Math.max(claim, Number(r.acknowledgedClaim));
  }
  return claim;
}

/**
 * Asks the decision table about a segment's start, reading the batch-marker claims of `fromHere`
 * (this segment and the later ones) only when a row needs them.
 */
export async function decideStartOf(
  facts: SegmentStartFacts,
  fromHere: string[],
  maxRecordBytes: number,
): Promise<Decision> {
  if (!startNeedsClaim(facts)) return decideSegmentStart(facts);
  const claim = await acknowledgedClaim(fromHere, maxRecordBytes);
  return decideSegmentStart({ ...facts, claimFromHere: claim });
}

/**
 * Asks the decision table about a segment's end (`r`, how its records ended), reading the claims
 * of `later` (the core's later segments) only when a row needs them.
 */
export async function decideEndOf(
  hasHeader: boolean,
  r: Exclude<ReadResult, { kind: "entry" }>,
  expected: number | undefined,
  later: string[],
  maxRecordBytes: number,
  path: string,
): Promise<Decision> {
  // Only an all-zero segment can be an emptied one: ask the file system only then.
  const zero = !hasHeader && r.kind === "end";
  const facts: SegmentEndFacts = {
    hasHeader,
    end: r.kind,
    offset: r.offset,
    reason: r.kind === "end" ? "" : r.reason,
    code: r.kind === "corrupted" ? r.code : "Corrupted",
    expected,
    truncated: zero && isEmptyFile(path) && anyLaidOut(later),
  };
  if (endNeedsClaim(facts)) {
    facts.claimLater = await acknowledgedClaim(later, maxRecordBytes);
  }
  return decideSegmentEnd(facts);
}
