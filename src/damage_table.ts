/**
 * What a hole or a bad record in a core's log means, decided once: the reading rules of
 * `docs/FORMAT.md` section 8 as two tables of rows, pure (no I/O). Reopen, the merge cursor,
 * recovery and repair, and the CLI's scan all ask these tables, so they classify the same files
 * the same way.
 *
 * - {@linkcode decideDamage}: within one segment, what follows the last valid record (the end of
 *   the log, a crash tail, or corruption).
 * - {@linkcode decideSegmentStart} and {@linkcode decideSegmentEnd}: across a core's segments, in
 *   index order, whether a segment continues the log, begins its crash tail, or is damage.
 *
 * Every row's condition excludes every other row's: exactly one row matches any input (the test
 * `tests/damage_table_test.ts` enumerates every combination). The facts that cost I/O (batch
 * marker claims of later segments) are asked for only when a row needs them: call the
 * `...NeedsClaim` function first, and fill the claim in if it says so.
 *
 * **One action for a crash tail.** Every caller that changes files puts the segments of a crash
 * tail aside (renamed with a `.damaged-` suffix, which no segment listing matches) rather than
 * deleting them: a tail holds no acknowledged record by the rules below, but those rules cannot
 * tell every destroyed acknowledged byte from a crash (FORMAT.md section 8, "what this cannot
 * tell apart"), so keeping the bytes lets an operator look. Segments that were never started (all
 * zeros, at the end of the list) are not a tail: they are removed and prepared again.
 *
 * @module
 */

import { assert } from "./assert.ts";
import type { SegmentHeader } from "./format.ts";

/** A row's verdict: where the log of a core goes on, ends, or is damaged. */
export type Decision =
  | {
    /** The segment continues the log (start: read it; end: go on to the next segment). */
    kind: "continue";
    /** The name of the row that decided. */
    row: string;
  }
  | {
    /**
     * The crash tail begins here: nothing from `offset` of this segment on was acknowledged.
     * The segment is cut at `offset` (0: the whole segment goes with the tail), and every later
     * segment of the core is part of the tail.
     */
    kind: "tail";
    /** The name of the row that decided. */
    row: string;
    /** Where the tail begins in this segment. */
    offset: number;
    /** Why this is a crash tail. */
    reason: string;
  }
  | {
    /** Damage that is not a crash tail: acknowledged data is lost or the file is not this log's. */
    kind: "corrupt";
    /** The name of the row that decided. */
    row: string;
    /** The error code for it. */
    code: "ChecksumMismatch" | "Corrupted";
    /** Where the damage is. */
    offset: number;
    /** What is wrong. */
    reason: string;
    /** Sequences are missing before this segment (a gap), as opposed to damage inside it. */
    gap: boolean;
    /** The segment belongs to another core or index (a misplaced file, skipped by salvage). */
    foreign: boolean;
  };

// ---------------------------------------------------------------------------------------------
// Within a segment

/** What a reader found after the last valid record of a segment, at offset `at`. */
export interface DamageFacts {
  /** Where reading stopped (the end of the valid records). */
  at: number;
  /** What is wrong with the record at `at` ("zeros followed by non-zero bytes", a CRC error). */
  what: string;
  /** The code the damage at `at` would have as corruption. */
  code: "ChecksumMismatch" | "Corrupted";
  /** Whether the segment has a header (false: its header block is zero). */
  hasHeader: boolean;
  /** Whether any byte from `at` to the end of the file is non-zero. */
  nonZero: boolean;
  /** Version 2 segment and crash-shaped damage (a sector of zeros in the record). */
  crashShaped: boolean;
  /** The first offset after `at` where a valid record starts, if any. */
  validAt: number | undefined;
  /** Whether this is the core's last started segment. */
  isLast: boolean;
  /** Whether the core's later segments are known (a reader given `laterSegments`). */
  laterKnown: boolean;
  /** The sequence expected at `at` (the first one missing). */
  missing: number;
  /** The sequence this segment must start at, when known (for a zero header). */
  expectedFirst: number | undefined;
  /** The largest batch-marker claim in this segment, the damaged part included. */
  claimHere: number;
  /** The largest claim of the later segments: needed when {@linkcode damageNeedsClaim}. */
  claimLater?: number;
}

/** A within-segment verdict in the reader's terms. */
export type DamageDecision =
  | { kind: "end"; row: string }
  | { kind: "torn"; row: string; offset: number; reason: string }
  | {
    kind: "corrupted";
    row: string;
    offset: number;
    reason: string;
    code: "ChecksumMismatch" | "Corrupted";
    resumeAt?: number;
  };

interface Row<F, D> {
  name: string;
  when: (f: F) => boolean;
  then: (f: F) => D;
}

const _after = (f: DamageFacts) =>
  f.validAt === undefined ? "" : `, followed by a valid record at offset ${f.validAt}`;
const _v2 = (f: DamageFacts) => f.hasHeader && f.nonZero && f.crashShaped;
/** The claims that may prove acknowledged data lost: later segments count if not the last. */
const _proof = (f: DamageFacts) => {
  const later = f.isLast || !f.laterKnown ? 0 : f.claimLater ?? 0;
  return f.claimHere > later ? f.claimHere : later;
};
const _v1 = (f: DamageFacts) => f.hasHeader && f.nonZero && !f.crashShaped;
const _zeroHeader = (f: DamageFacts) => !f.hasHeader && f.nonZero;
const _unclaimedStart = (f: DamageFacts) =>
  f.expectedFirst !== undefined && f.laterKnown && (f.claimLater ?? 0) < f.expectedFirst;

/** The rows of section 8's tables for one segment, in the order FORMAT.md gives them. */
export const DAMAGE_ROWS: readonly Row<DamageFacts, DamageDecision>[] = [
  {
    name: "zeros to the end",
    when: (f) => !f.nonZero,
    then: () => ({ kind: "end", row: "zeros to the end" }),
  },
  {
    name: "v2: a batch marker claims the lost sequence",
    when: (f) => _v2(f) && _proof(f) >= f.missing,
    then: (f) => ({
      kind: "corrupted",
      row: "v2: a batch marker claims the lost sequence",
      offset: f.at,
      reason: `${f.what}${_after(f)}; a batch marker${
        f.claimHere >= f.missing ? "" : " in a later segment"
      } says records through sequence ${
        _proof(f)
      } were acknowledged (sequence ${f.missing} is lost)`,
      code: f.code,
      resumeAt: f.validAt,
    }),
  },
  {
    name: "v2: unclaimed, not the last segment, later segments unknown",
    when: (f) => _v2(f) && _proof(f) < f.missing && !f.isLast && !f.laterKnown,
    then: (f) => ({
      kind: "corrupted",
      row: "v2: unclaimed, not the last segment, later segments unknown",
      offset: f.at,
      reason: `${f.what} in a segment that is not the core's last`,
      code: f.code,
      resumeAt: f.validAt,
    }),
  },
  {
    name: "v2: unclaimed crash tail",
    when: (f) => _v2(f) && _proof(f) < f.missing && (f.isLast || f.laterKnown),
    then: (f) => ({
      kind: "torn",
      row: "v2: unclaimed crash tail",
      offset: f.at,
      reason: `${f.what}${f.validAt === undefined ? "" : ", unacknowledged batches follow"}`,
    }),
  },
  {
    name: "a valid record follows the damage",
    when: (f) => _v1(f) && f.validAt !== undefined,
    then: (f) => ({
      kind: "corrupted",
      row: "a valid record follows the damage",
      offset: f.at,
      reason: `${f.what}${_after(f)}`,
      code: f.code,
      resumeAt: f.validAt,
    }),
  },
  {
    name: "damage in a segment that is not the last",
    when: (f) => _v1(f) && f.validAt === undefined && !f.isLast,
    then: (f) => ({
      kind: "corrupted",
      row: "damage in a segment that is not the last",
      offset: f.at,
      reason: `${f.what} in a segment that is not the core's last`,
      code: f.code,
    }),
  },
  {
    name: "torn last record",
    when: (f) => _v1(f) && f.validAt === undefined && f.isLast,
    then: (f) => ({ kind: "torn", row: "torn last record", offset: f.at, reason: f.what }),
  },
  {
    name: "zero header, last segment",
    when: (f) => _zeroHeader(f) && f.isLast,
    then: () => ({
      kind: "torn",
      row: "zero header, last segment",
      offset: 0,
      // The header block is written in the chain of the segment's first batch: a segment
      // without it never had a batch acknowledged. Its records cannot be checked (the salt is
      // in the header), so this is also what a destroyed header of a last segment looks like.
      reason: "zero segment header followed by data (its first batch never completed)",
    }),
  },
  {
    name: "zero header, no later marker claims it",
    when: (f) => _zeroHeader(f) && !f.isLast && _unclaimedStart(f),
    then: () => ({
      kind: "torn",
      row: "zero header, no later marker claims it",
      offset: 0,
      reason: "zero segment header followed by data (its first batch never completed; " +
        "no later batch marker claims it)",
    }),
  },
  {
    name: "zero header, claimed or unknown",
    when: (f) => _zeroHeader(f) && !f.isLast && !_unclaimedStart(f),
    then: () => ({
      kind: "corrupted",
      row: "zero header, claimed or unknown",
      offset: 0,
      reason: "zero segment header followed by data",
      code: "Corrupted",
    }),
  },
];

/** Whether {@linkcode decideDamage} needs `claimLater` for these facts. */
export function damageNeedsClaim(f: Omit<DamageFacts, "claimLater">): boolean {
  if (!f.nonZero || f.isLast || !f.laterKnown) return false;
  if (f.hasHeader) return f.crashShaped && f.claimHere < f.missing;
  return f.expectedFirst !== undefined;
}

/** Classifies what follows the valid records of a segment (FORMAT.md section 8). */
export function decideDamage(f: DamageFacts): DamageDecision {
  return _match(DAMAGE_ROWS, f).then(f);
}

// ---------------------------------------------------------------------------------------------
// Across a core's segments

/** What is known of a segment before its records are read. */
export interface SegmentStartFacts {
  /** Whether its header block holds a valid header (false: zero; read on to find out more). */
  hasHeader: boolean;
  /** The header's core id and segment index equal the file name's (true without a header). */
  identityMatches: boolean;
  /** The header's core id and segment index (for the message). */
  headerCoreId: number;
  /** The header's segment index. */
  headerSegment: number;
  /** The header's version (2 writes batch markers). */
  version: number;
  /** The header's first sequence. */
  firstSequence: number;
  /**
   * The previous started segment's last sequence + 1, when a previous segment was read (the
   * first segment read has none).
   */
  expected: number | undefined;
  /** For the first segment read: the segment replay must start in (a checkpoint's barrier). */
  startSegment: number | undefined;
  /** This segment's index. */
  index: number;
  /** For the first segment read, without a start: the log must begin at sequence 1. */
  requireBeginning: boolean;
  /** Whether this is the first segment read. */
  isFirst: boolean;
  /** The largest batch-marker claim of this and the later segments: see `startNeedsClaim`. */
  claimFromHere?: number;
}

const _gapUnclaimed = (f: SegmentStartFacts) =>
  f.hasHeader && f.expected !== undefined && f.version >= 2 && f.firstSequence > f.expected &&
  (f.claimFromHere ?? 0) < f.expected;
const _startMissing = (f: SegmentStartFacts) =>
  f.isFirst && f.startSegment !== undefined && f.index !== f.startSegment;
const _noBeginning = (f: SegmentStartFacts) =>
  f.hasHeader && f.isFirst && f.startSegment === undefined && f.requireBeginning &&
  f.firstSequence !== 1;

function _gap(row: string, reason: string, foreign = false): Decision {
  return { kind: "corrupt", row, code: "Corrupted", offset: 0, reason, gap: true, foreign };
}

/** The rows deciding on a segment from its header, before its records are read. */
export const START_ROWS: readonly Row<SegmentStartFacts, Decision>[] = [
  {
    name: "header of another core or index",
    when: (f) => f.hasHeader && !f.identityMatches,
    then: (f) =>
      _gap(
        "header of another core or index",
        `its header says core ${f.headerCoreId} segment ${f.headerSegment}`,
        true,
      ),
  },
  {
    name: "the checkpoint's start segment is missing",
    when: (f) => (!f.hasHeader || f.identityMatches) && _startMissing(f),
    then: (f) =>
      _gap(
        "the checkpoint's start segment is missing",
        `replay starts in segment ${f.startSegment} (a checkpoint's barrier), which is missing`,
      ),
  },
  {
    name: "the log's beginning is missing",
    when: (f) => f.identityMatches && _noBeginning(f),
    then: (f) =>
      _gap(
        "the log's beginning is missing",
        `the log begins at sequence ${f.firstSequence} and no valid checkpoint covers the ` +
          `sequences before it (segments missing, or retired by a checkpoint that is not usable)`,
      ),
  },
  {
    name: "v2: unclaimed gap at a rotation",
    when: (f) => f.identityMatches && !_startMissing(f) && !_noBeginning(f) && _gapUnclaimed(f),
    then: (f) => ({
      kind: "tail",
      row: "v2: unclaimed gap at a rotation",
      offset: 0,
      reason: `it starts at sequence ${f.firstSequence} but the previous segment ends at ` +
        `${f.expected! - 1}, and no batch marker claims sequence ${f.expected} (the batches ` +
        `of a rotation were in flight at a crash)`,
    }),
  },
  {
    name: "a segment is missing",
    when: (f) =>
      f.hasHeader && f.identityMatches && !_startMissing(f) && !_noBeginning(f) &&
      !_gapUnclaimed(f) &&
      f.expected !== undefined && f.firstSequence !== f.expected,
    then: (f) =>
      _gap(
        "a segment is missing",
        `it starts at sequence ${f.firstSequence} but the previous segment ends at ` +
          `${f.expected! - 1} (a segment is missing)`,
      ),
  },
  {
    name: "continues the log",
    when: (f) =>
      f.hasHeader && f.identityMatches && !_startMissing(f) && !_noBeginning(f) &&
      !_gapUnclaimed(f) && (f.expected === undefined || f.firstSequence === f.expected),
    then: () => ({ kind: "continue", row: "continues the log" }),
  },
  {
    name: "no header: its records decide",
    when: (f) => !f.hasHeader && !_startMissing(f),
    then: () => ({ kind: "continue", row: "no header: its records decide" }),
  },
];

/** Whether {@linkcode decideSegmentStart} needs `claimFromHere` for these facts. */
export function startNeedsClaim(f: Omit<SegmentStartFacts, "claimFromHere">): boolean {
  return f.hasHeader && f.identityMatches && !_startMissing(f) && !_noBeginning(f) &&
    f.expected !== undefined && f.version >= 2 && f.firstSequence > f.expected;
}

/** Decides on a segment with a header before reading its records. */
export function decideSegmentStart(f: SegmentStartFacts): Decision {
  return _match(START_ROWS, f).then(f);
}

/** How a segment's records ended, as its reader classified them with {@linkcode decideDamage}. */
export interface SegmentEndFacts {
  /** Whether the segment has a header. */
  hasHeader: boolean;
  /** The reader's verdict. */
  end: DamageDecision["kind"];
  /** Where the records ended (end), or the damage is (torn, corrupted). */
  offset: number;
  /** The reader's reason (torn, corrupted). */
  reason: string;
  /** The reader's code (corrupted). */
  code: "ChecksumMismatch" | "Corrupted";
  /** The sequence this segment must start at, when known. */
  expected: number | undefined;
  /**
   * The file is empty (0 bytes) and a later segment of the core has bytes (was laid out, started
   * or not): it was laid out and then truncated. The writer creates segment N + 1 only once N's
   * preparation (its full size included) is durable, so any later segment with bytes proves this
   * one had its full size.
   */
  truncated: boolean;
  /** The largest claim of the later segments: see {@linkcode endNeedsClaim}. */
  claimLater?: number;
}

const _allZero = (f: SegmentEndFacts) => !f.hasHeader && f.end === "end" && !f.truncated;

/** The rows deciding on a segment once its records have been read. */
export const END_ROWS: readonly Row<SegmentEndFacts, Decision>[] = [
  {
    name: "empty segment before a laid-out one",
    when: (f) => !f.hasHeader && f.end === "end" && f.truncated,
    then: () => ({
      kind: "corrupt",
      row: "empty segment before a laid-out one",
      code: "Corrupted",
      offset: 0,
      reason: "the segment is empty (0 bytes) but a later segment was laid out after it: it was " +
        "truncated (a segment is durable at its full size before the next one is created), and " +
        "its records are lost",
      gap: false,
      foreign: false,
    }),
  },
  {
    name: "all-zero segment, no later marker claims it",
    when: (f) => _allZero(f) && f.expected !== undefined && (f.claimLater ?? 0) < f.expected,
    then: (f) => ({
      kind: "tail",
      row: "all-zero segment, no later marker claims it",
      offset: 0,
      reason: "an all-zero segment before started ones (its batches never reached the disk), " +
        `and no batch marker claims sequence ${f.expected}`,
    }),
  },
  {
    name: "all-zero segment, claimed or unknown",
    when: (f) => _allZero(f) && (f.expected === undefined || (f.claimLater ?? 0) >= f.expected),
    then: () => ({
      kind: "corrupt",
      row: "all-zero segment, claimed or unknown",
      code: "Corrupted",
      offset: 0,
      reason: "its header is zero",
      gap: true,
      foreign: false,
    }),
  },
  {
    name: "corrupted",
    when: (f) => f.end === "corrupted",
    then: (f) => ({
      kind: "corrupt",
      row: "corrupted",
      code: f.code,
      offset: f.offset,
      reason: f.reason,
      gap: false,
      foreign: false,
    }),
  },
  {
    name: "torn",
    when: (f) => f.end === "torn",
    then: (f) => ({ kind: "tail", row: "torn", offset: f.offset, reason: f.reason }),
  },
  {
    name: "clean end",
    when: (f) => f.hasHeader && f.end === "end",
    then: () => ({ kind: "continue", row: "clean end" }),
  },
];

/** Whether {@linkcode decideSegmentEnd} needs `claimLater` for these facts. */
export function endNeedsClaim(f: Omit<SegmentEndFacts, "claimLater">): boolean {
  return _allZero(f) && f.expected !== undefined;
}

/** Decides on a segment once its records have been read. */
export function decideSegmentEnd(f: SegmentEndFacts): Decision {
  return _match(END_ROWS, f).then(f);
}

// ---------------------------------------------------------------------------------------------
// The never-started segments at the end of a core's list

/** A segment at the end of a core's list, after which every segment was never started. */
export interface TrailingFacts {
  /** What the file holds: nothing (0 bytes), only zeros, or a non-zero byte. */
  content: "empty" | "zeros" | "data";
  /** Whether a later segment of the core has bytes (was laid out). */
  laterLaidOut: boolean;
}

/** A trailing segment's verdict. */
export type TrailingDecision = {
  /**
   * `unstarted`: never started, removed or skipped (it is prepared again later). `started`: it
   * and every segment before it are read. `truncated`: an emptied segment, which the reading
   * rows refuse (`"empty segment before a laid-out one"`): nothing after it is dropped.
   */
  kind: "unstarted" | "started" | "truncated";
  /** The name of the row that decided. */
  row: string;
};

/** The rows deciding, from the end of a core's list back, which segments were never started. */
export const TRAILING_ROWS: readonly Row<TrailingFacts, TrailingDecision>[] = [
  {
    name: "data: started",
    when: (f) => f.content === "data",
    then: () => ({ kind: "started", row: "data: started" }),
  },
  {
    name: "prepared ahead, never started",
    when: (f) => f.content === "zeros",
    then: () => ({ kind: "unstarted", row: "prepared ahead, never started" }),
  },
  {
    // A crash while creating it, or a power loss before its size was durable.
    name: "empty, nothing laid out after it (a crash while creating it)",
    when: (f) => f.content === "empty" && !f.laterLaidOut,
    then: () => ({
      kind: "unstarted",
      row: "empty, nothing laid out after it (a crash while creating it)",
    }),
  },
  {
    // The next segment is created only once this one's preparation is durable (core_log.ts,
    // #rotate): this one had its full size (see `SegmentEndFacts.truncated`).
    name: "empty before a laid-out segment (truncated)",
    when: (f) => f.content === "empty" && f.laterLaidOut,
    then: () => ({ kind: "truncated", row: "empty before a laid-out segment (truncated)" }),
  },
];

/** Decides whether a segment at the end of a core's list was never started. */
export function decideTrailing(f: TrailingFacts): TrailingDecision {
  return _match(TRAILING_ROWS, f).then(f);
}

function _match<F, D>(rows: readonly Row<F, D>[], f: F): Row<F, D> {
  const hits = rows.filter((r) => r.when(f));
  // Rows exclude each other by construction (tests/damage_table_test.ts enumerates every input).
  assert(
    hits.length === 1,
    `exactly one row of the damage table matches (${hits.map((r) => r.name).join(", ")})`,
  );
  return hits[0];
}

/**
 * The start facts of the segment with index `index` of core `coreId`, from its header (undefined:
 * zero) and the last sequence of the previous segment read (undefined: none read yet).
 */
export function startFacts(
  header: SegmentHeader | undefined,
  coreId: number,
  index: number,
  previousLast: number | undefined,
  isFirst: boolean,
  first: { startSegment?: number; requireBeginning?: boolean } = {},
): SegmentStartFacts {
  return {
    hasHeader: header !== undefined,
    identityMatches: header === undefined ||
      (header.coreId === coreId && header.segmentIndex === index),
    headerCoreId: header?.coreId ?? coreId,
    headerSegment: header?.segmentIndex ?? index,
    version: header?.version ?? 0,
    firstSequence: header?.firstSequence ?? 0,
    expected: previousLast === undefined ? undefined : previousLast + 1,
    startSegment: isFirst ? first.startSegment : undefined,
    index,
    requireBeginning: first.requireBeginning ?? false,
    isFirst,
  };
}
