/**
 * Open-time recovery of one core's segments (FORMAT.md section 9, "Repair on reopen"): reads
 * them in order, asks the decision table (`src/damage_table.ts`) what each one means, puts a
 * crash tail aside (`src/crash_tail.ts`), refuses damage, and says where appending goes on.
 *
 * @module
 */

import type { PerCoreWalConfig } from "./config.ts";
import { setTailAside } from "./crash_tail.ts";
import { assert } from "./assert.ts";
import { type Decision, startFacts } from "./damage_table.ts";
import { PerCoreWalError } from "./errors.ts";
import { emitEvent, type WalEventHandler } from "./events.ts";
import { lstatIfExists, removePath, syncFile } from "./fs.ts";
import { PerCoreWalReader } from "./reader.ts";
import { decideEndOf, decideStartOf } from "./segment_probes.ts";
import { listCoreSegments, unstartedAtEnd } from "./segment_files.ts";
import { segmentDamageMessage } from "./segment_message.ts";

/** The last started segment of a core after recovery: where appending may go on. */
export interface LastSegment {
  /** Its index. */
  index: number;
  /** Its path. */
  path: string;
  /** The end of its valid records. */
  validEnd: number;
  /** Its size in bytes. */
  size: number;
  /** Whether its records ended cleanly (only zeros, or nothing, after them). */
  clean: boolean;
  /** Its salt. */
  salt: number;
  /** Its first sequence. */
  firstSequence: number;
  /** Its format version. */
  version: number;
}

/** What open-time recovery found for one core. */
export interface RecoveredCore {
  /** The last valid sequence (0: the core has no record). */
  lastSequence: number;
  /** The timestamp of the last valid record, in nanoseconds (0 without one). */
  lastTimestampNs: bigint;
  /** The largest epoch of a valid record (0 without one). */
  maxEpoch: number;
  /** The last started segment, if any. */
  last: LastSegment | undefined;
  /** The index the next new segment gets. */
  nextIndex: number;
  /** Segments of a crash tail put aside, by the names they were put aside under. */
  putAside: string[];
}

type Segment = { index: number; path: string };
type Walk =
  | { kind: "done"; core: RecoveredCore }
  | { kind: "tail"; at: number; offset: number };

/**
 * Reads core `coreId`'s segments, cuts a crash tail, and returns where the log goes on. Throws
 * `PerCoreWalError` for damage that is not a crash tail. Reports each cut and each segment put
 * aside to `onEvent`.
 */
export async function recoverCoreSegments(
  config: PerCoreWalConfig,
  coreId: number,
  onEvent?: WalEventHandler,
): Promise<RecoveredCore> {
  const putAside: string[] = [];
  while (true) {
    const segs = _startedSegments(config, coreId);
    const walk = await _walk(config, coreId, segs);
    if (walk.kind === "done") return { ...walk.core, putAside };
    // A crash tail that begins before the last segment's valid end: put it aside, then read
    // again (the segment where it began is now the last one).
    const begin = segs[walk.at];
    const size = walk.offset > 0 ? lstatIfExists(begin.path)?.size : undefined;
    const aside = setTailAside(
      config.baseDir,
      { path: begin.path, offset: walk.offset },
      segs.slice(walk.at + 1),
    );
    putAside.push(...aside);
    if (aside.length > 0) emitEvent(onEvent, { type: "segmentsPutAside", coreId, paths: aside });
    if (size !== undefined) {
      emitEvent(onEvent, {
        type: "tornTailCut",
        coreId,
        segment: begin.index,
        path: begin.path,
        offset: walk.offset,
        bytes: Math.max(0, size - walk.offset),
      });
    }
  }
}

/**
 * The core's segments less those at the end that were never started (all zeros: the one
 * prepared ahead, and a current one that got no record before a close or a crash), which are
 * removed: they are prepared again later.
 */
function _startedSegments(config: PerCoreWalConfig, coreId: number): Segment[] {
  const segs = listCoreSegments(config, coreId);
  for (let n = unstartedAtEnd(segs); n > 0; n--) removePath(segs.pop()!.path);
  return segs;
}

async function _walk(config: PerCoreWalConfig, coreId: number, segs: Segment[]): Promise<Walk> {
  const core: RecoveredCore = {
    lastSequence: 0,
    lastTimestampNs: 0n,
    maxEpoch: 0,
    last: undefined,
    nextIndex: segs.length > 0 ? segs[segs.length - 1].index + 1 : 0,
    putAside: [],
  };
  let previousLast: number | undefined;
  for (let i = 0; i < segs.length; i++) {
    const read = await _readSegment(config, coreId, segs, i, previousLast);
    if (read.kind === "tail") return { kind: "tail", at: i, offset: read.offset };
    const { reader, clean } = read;
    await using _ = reader;
    const isLast = i === segs.length - 1;
    // A process crash can leave an earlier segment's last batch only in the page cache:
    // everything recovered is declared durable, so make it so.
    if (!isLast) syncFile(segs[i].path);
    const st = reader.stats;
    previousLast = st.lastSequence;
    core.lastSequence = Number(st.lastSequence);
    if (st.entryCount > 0) core.lastTimestampNs = reader.lastTimestampNs;
    core.maxEpoch = Math.max(core.maxEpoch, Number(st.maxEpoch));
    const h = reader.header;
    // A segment without a header never continues the log (the decision table's rows).
    assert(h !== undefined, "a segment that continues a core's log has a header", { coreId });
    if (isLast) {
      core.last = {
        index: segs[i].index,
        path: segs[i].path,
        validEnd: st.validEndOffset,
        size: st.fileSizeBytes,
        clean,
        salt: h.salt,
        firstSequence: Number(h.firstSequence),
        version: h.version,
      };
    }
  }
  return { kind: "done", core };
}

/**
 * Reads segment `i` to its end and asks the decision table about it: a crash tail that begins in
 * it, or its reader (still open) and whether its records ended cleanly. Throws for damage.
 */
async function _readSegment(
  config: PerCoreWalConfig,
  coreId: number,
  segs: Segment[],
  i: number,
  previousLast: number | undefined,
): Promise<
  { kind: "tail"; offset: number } | { kind: "read"; reader: PerCoreWalReader; clean: boolean }
> {
  const maxRecordBytes = config.options.maxRecordBytes;
  const paths = segs.map((s) => s.path);
  const s = segs[i];
  const isLast = i === segs.length - 1;
  const refuse = (d: Extract<Decision, { kind: "corrupt" }>) =>
    new PerCoreWalError(
      d.code,
      segmentDamageMessage("open", s.path, d.reason, d.gap ? undefined : d.offset),
      { coreId, segment: s.path, offset: d.gap ? undefined : d.offset },
    );
  // Segment 0 of a core starts at sequence 1.
  const expected = previousLast !== undefined ? previousLast + 1 : s.index === 0 ? 1 : undefined;
  const reader = await PerCoreWalReader.open(s.path, {
    maxRecordBytes,
    isLastSegment: isLast,
    laterSegments: paths.slice(i + 1),
    expectedFirstSequence: expected,
  });
  try {
    const facts = startFacts(reader.header, coreId, s.index, previousLast, i === 0);
    const started = await decideStartOf(facts, paths.slice(i), maxRecordBytes);
    if (started.kind === "tail") return await _closed(reader, { kind: "tail", offset: 0 });
    if (started.kind === "corrupt") throw refuse(started);
    let r = await reader.readNext();
    while (r.kind === "entry") r = await reader.readNext();
    const later = paths.slice(i + 1);
    const ended = await decideEndOf(
      reader.header !== undefined,
      r,
      expected,
      later,
      maxRecordBytes,
      s.path,
    );
    if (ended.kind === "corrupt") throw refuse(ended);
    // A torn last record of the last segment is cut where appending resumes (CoreLog.open).
    if (ended.kind === "tail" && !(isLast && ended.offset > 0)) {
      return await _closed(reader, { kind: "tail", offset: ended.offset });
    }
    return { kind: "read", reader, clean: r.kind === "end" };
  } catch (e) {
    await reader.closeAsync();
    throw e;
  }
}

async function _closed<T>(reader: PerCoreWalReader, value: T): Promise<T> {
  await reader.closeAsync();
  return value;
}
