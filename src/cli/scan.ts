/**
 * The read-only scan behind `inspect`, `verify` and `stats`: every segment of every core read
 * through the validating reader, going on past damage to find all of it, with the checks a
 * cursor makes between segments (header names the file's core and index, sequences continue),
 * and every checkpoint checked against its manifest. Takes no lock: works on a directory in use.
 *
 * Crash tails are classified as recovery classifies them (docs/FORMAT.md, section 8): the reader
 * gets the core's later segments and the sequence a segment must start at, so a hole that no
 * later batch marker claims is a torn tail even before the last segment, and a version 2 segment
 * that starts past a hole no marker claims begins one. The segments after the start of a crash
 * tail hold no acknowledged record: they are reported as part of it (repair puts them aside), not
 * read for damage.
 *
 * @module
 */

import {
  type CheckpointMetadata,
  defaultCheckpointDir,
  foreignReason,
  legacyCheckpointDir,
  readCheckpoint,
  verifyCheckpointFiles,
} from "../checkpoint_store.ts";
import { chooseWalCheckpoint } from "../checkpoint_choice.ts";
import { readWalMeta } from "../wal_meta.ts";
import { parseSegmentFileName, type PerCoreWalConfig } from "../config.ts";
import { isMissing, readDirectory, statPath } from "../fs.ts";
import { PerCoreWalError } from "../errors.ts";
import type { SegmentHeader } from "../format.ts";
import { startFacts } from "../damage_table.ts";
import { PerCoreWalReader } from "../reader.ts";
import { decideEndOf, decideStartOf } from "../segment_probes.ts";
import { listCoreSegments, unstartedAtEnd } from "../segment_files.ts";
import { StateFile } from "../state_file.ts";
import type { WalOperation } from "../types.ts";

/** Damage found: where, and what is wrong. */
export interface Damage {
  /** The file concerned. */
  path: string;
  /** The byte offset in it. */
  offset: number;
  /** A `PerCoreWalErrorCode` ("Corrupted", "ChecksumMismatch", "TornWrite", ...). */
  code: string;
  /** What is wrong. */
  reason: string;
  /**
   * For a torn tail (a crash tail) that spans segments: the segments wholly in it, which repair
   * puts aside (the later ones; for a segment that starts past a hole, that one too).
   */
  tailSegments?: string[];
}

/**
 * What a segment scan found. `crashTail`: the segment lies after the start of its core's crash
 * tail (batches in flight at a crash, none acknowledged); recovery ignores it, repair removes it.
 */
export type SegmentState =
  | "clean"
  | "zeroTail"
  | "tornTail"
  | "corrupted"
  | "unstarted"
  | "crashTail";

/** One segment, scanned. */
export interface SegmentScan {
  /** The core. */
  coreId: number;
  /** The segment index (from its name). */
  index: number;
  /** The file. */
  path: string;
  /** Its size. */
  fileSizeBytes: number;
  /** Its header, when it has a valid one. */
  header?: SegmentHeader;
  /** Valid entries. */
  entries: number;
  /** Valid entries by operation type. */
  types: Record<WalOperation["type"], number>;
  /** First and last valid sequence (none without entries). */
  firstSequence?: number;
  /** Last valid sequence. */
  lastSequence?: number;
  /** Smallest and largest epoch of a valid entry. */
  minEpoch?: number;
  /** Largest epoch of a valid entry. */
  maxEpoch?: number;
  /** End of the last valid record. */
  validEndOffset: number;
  /** Zero bytes after the records (space prepared ahead). */
  preallocatedBytes: number;
  /** What was found. */
  state: SegmentState;
  /** Damage in it (a torn tail is in `torn`, not here). */
  damage: Damage[];
  /** The torn tail (a crash tail begins here; later segments are part of it). */
  torn?: Damage;
  /** For a segment in state `crashTail`: where its core's crash tail begins. */
  crashTail?: Damage;
}

/** One checkpoint directory, checked. */
export interface CheckpointScan {
  /** Its directory. */
  path: string;
  /** Its metadata, when the manifest is valid. */
  meta?: CheckpointMetadata;
  /** Whether manifest, file sizes, checksums and state file are valid. */
  valid: boolean;
  /** Why not. */
  reason?: string;
  /** An unfinished checkpoint (`ckpt-N.tmp`), which recovery ignores. */
  incomplete: boolean;
  /** Whether recovery would use it (the newest valid one). */
  used: boolean;
  /**
   * Of another WAL (or a legacy one, in the old default directory, whose barriers are not in this
   * WAL's log): ignored by recovery, not damage of this WAL.
   */
  foreign?: boolean;
}

/** A WAL directory, scanned. */
export interface DirectoryScan {
  /** The configuration (from `wal.json` or the file names). */
  config: PerCoreWalConfig;
  /** Per core, its segments by index. */
  cores: SegmentScan[][];
  /** The checkpoints, oldest first. */
  checkpoints: CheckpointScan[];
  /** The checkpoint directory looked at. */
  checkpointDir: string;
  /** Every damage, segments, gaps, extra files and checkpoints together. */
  damage: Damage[];
  /** Every torn tail. */
  torn: Damage[];
}

/**
 * The checkpoints of a WAL (its `walId`) as recovery finds them: in `checkpointDir` when given,
 * else in the default directory, or the old default beside the WAL directory when recovery
 * would use a checkpoint there (FORMAT.md section 11).
 */
export async function scanWalCheckpoints(
  config: PerCoreWalConfig,
  checkpointDir?: string,
): Promise<{ checkpointDir: string; checkpoints: CheckpointScan[] }> {
  const walId = readWalMeta(config.baseDir)?.walId ?? null;
  if (checkpointDir !== undefined) {
    return { checkpointDir, checkpoints: scanCheckpoints(checkpointDir, walId) };
  }
  const choice = await chooseWalCheckpoint(config, walId ?? undefined, undefined);
  const legacy = legacyCheckpointDir(config.baseDir);
  const dir = choice.checkpoint?.path.startsWith(`${legacy}/`)
    ? legacy
    : defaultCheckpointDir(config.baseDir);
  const exclude = new Map<string, string>();
  for (const r of choice.checkpointReport) {
    if (r.status === "foreign") exclude.set(r.path, r.reason!);
  }
  return { checkpointDir: dir, checkpoints: scanCheckpoints(dir, walId, exclude) };
}

/**
 * The checkpoints in `dir` (none if it does not exist), checked, oldest first; those of another
 * WAL than `walId` (and those in `exclude`) are marked foreign, never used (`walId` as in
 * `chooseCheckpoint`'s options).
 */
export function scanCheckpoints(
  dir: string,
  walId?: string | null,
  exclude: ReadonlyMap<string, string> = new Map(),
): CheckpointScan[] {
  let names: string[];
  try {
    names = readDirectory(dir).map((e) => e.name);
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
  const out: CheckpointScan[] = [];
  for (const n of names) {
    const m = /^ckpt-(\d+)(\.tmp)?$/.exec(n);
    if (m === null) continue;
    const path = `${dir}/${n}`;
    if (m[2] !== undefined) {
      out.push({ path, valid: false, incomplete: true, used: false, reason: "unfinished" });
      continue;
    }
    const meta = readCheckpoint(path);
    if ("invalid" in meta) {
      out.push({ path, valid: false, incomplete: false, used: false, reason: meta.invalid });
      continue;
    }
    const foreign = exclude.get(path) ?? foreignReason(meta, walId);
    if (foreign !== undefined) {
      out.push({
        path,
        meta,
        valid: false,
        incomplete: false,
        used: false,
        reason: foreign,
        foreign: true,
      });
      continue;
    }
    let reason = verifyCheckpointFiles(meta);
    if (reason === undefined) {
      try {
        StateFile.open(`${path}/state.kv`).close();
      } catch (e) {
        if (!(e instanceof PerCoreWalError)) throw e;
        reason = e.message;
      }
    }
    out.push({ path, meta, valid: reason === undefined, reason, incomplete: false, used: false });
  }
  const id = (c: CheckpointScan) => Number(/ckpt-(\d+)/.exec(c.path)![1]);
  out.sort((a, b) => id(a) - id(b) || Number(a.incomplete) - Number(b.incomplete));
  const newest = out.findLast((c) => c.valid);
  if (newest !== undefined) newest.used = true;
  return out;
}

/** Options of {@linkcode scanDirectory}. */
export interface ScanOptions {
  /** Where the checkpoints are (default: `checkpoints` inside the WAL directory, FORMAT.md 11). */
  checkpointDir?: string;
  /** Called with the bytes scanned so far, out of `totalBytes`. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** Scans every segment and checkpoint of a WAL directory. Changes nothing. */
export async function scanDirectory(
  config: PerCoreWalConfig,
  options: ScanOptions = {},
): Promise<DirectoryScan> {
  const { checkpointDir, checkpoints } = await scanWalCheckpoints(config, options.checkpointDir);
  const damage: Damage[] = [];
  const torn: Damage[] = [];
  for (const c of checkpoints) {
    if (!c.valid && !c.incomplete && !c.foreign) {
      damage.push({ path: c.path, offset: 0, code: "Corrupted", reason: c.reason! });
    }
  }
  const used = checkpoints.find((c) => c.used)?.meta;
  const lists = Array.from({ length: config.numCores }, (_, c) => listCoreSegments(config, c));
  const total = lists.flat().reduce((n, s) => n + _size(s.path), 0);
  let done = 0;
  const cores: SegmentScan[][] = [];
  for (let c = 0; c < config.numCores; c++) {
    const segs = lists[c];
    const scanned = await _scanCore(config, c, segs, used === undefined, (n) => {
      options.onProgress?.(done + n, total);
    }, (n) => done += n);
    const out = scanned.segments;
    damage.push(...scanned.damage);
    torn.push(...scanned.torn);
    const start = used?.walPositions[c];
    if (start !== undefined && !segs.some((s) => s.index === start.segment)) {
      damage.push({
        path: config.segmentPath(c, start.segment),
        offset: start.offset,
        code: "Corrupted",
        reason: `it holds the barrier of checkpoint "${used!.path}" (replay starts there) and is ` +
          `missing`,
      });
    }
    cores.push(out);
  }
  damage.push(..._extraSegments(config));
  options.onProgress?.(total, total);
  return { config, cores, checkpoints, checkpointDir, damage, torn };
}

/** One core's segments, scanned, with the decision table's verdict between them. */
async function _scanCore(
  config: PerCoreWalConfig,
  coreId: number,
  segs: { index: number; path: string }[],
  requireBeginning: boolean,
  progress: (bytes: number) => void,
  scannedBytes: (bytes: number) => void,
): Promise<{ segments: SegmentScan[]; damage: Damage[]; torn: Damage[] }> {
  // Segments prepared ahead and never started are not the core's last segment.
  const last = segs.length - 1 - unstartedAtEnd(segs);
  const out: SegmentScan[] = [];
  const damage: Damage[] = [];
  const torn: Damage[] = [];
  let prev: SegmentScan | undefined;
  let tail: Damage | undefined;
  for (let i = 0; i < segs.length; i++) {
    if (tail !== undefined) {
      // Past the start of the crash tail: nothing here was acknowledged.
      tail.tailSegments!.push(segs[i].path);
      out.push(_tailSegment(coreId, segs[i], tail));
      scannedBytes(out[i].fileSizeBytes);
      continue;
    }
    const previousLast = prev?.header === undefined
      ? undefined
      : prev.lastSequence ?? prev.header.firstSequence - 1;
    const place = { coreId, segs, i, last, previousLast, requireBeginning };
    const s = await _scanDecided(config, place, progress);
    scannedBytes(s.fileSizeBytes);
    if (s.state === "crashTail") {
      // Nothing from the start of this segment on was acknowledged.
      tail = s.crashTail!;
      torn.push(tail);
    } else if (s.header !== undefined) {
      prev = s;
    }
    out.push(s);
    damage.push(...s.damage);
    if (s.torn !== undefined) {
      torn.push(s.torn);
      if (i < last) {
        s.torn.tailSegments = [];
        tail = s.torn;
      }
    }
  }
  return { segments: out, damage, torn };
}

/**
 * Scans segment `i` of a core and asks the decision table about its start and, for an all-zero
 * segment before started ones, its end: a crash tail that begins here (state `crashTail`), or
 * damage added to the scan.
 */
async function _scanDecided(
  config: PerCoreWalConfig,
  place: {
    coreId: number;
    segs: { index: number; path: string }[];
    i: number;
    last: number;
    previousLast: number | undefined;
    requireBeginning: boolean;
  },
  progress: (bytes: number) => void,
): Promise<SegmentScan> {
  const { coreId, segs, i, previousLast } = place;
  const maxRecordBytes = config.options.maxRecordBytes;
  const paths = segs.map((x) => x.path);
  // Segment 0 of a core starts at sequence 1.
  const expected = previousLast !== undefined
    ? previousLast + 1
    : segs[i].index === 0
    ? 1
    : undefined;
  const s = await _scanSegment(config, coreId, segs[i], {
    isLast: i === place.last,
    later: paths.slice(i + 1),
    expectedFirst: expected,
  }, progress);
  // The first segment read with a header is where the log must begin (without a checkpoint).
  const facts = startFacts(s.header, coreId, s.index, previousLast, previousLast === undefined, {
    requireBeginning: place.requireBeginning,
  });
  const started = await decideStartOf(facts, paths.slice(i), maxRecordBytes);
  const decisions = [started];
  if (started.kind !== "tail" && s.state === "unstarted" && i < place.last) {
    // An all-zero segment before started ones.
    const end = { kind: "end" as const, offset: 0, preallocatedBytes: s.fileSizeBytes };
    decisions.push(
      await decideEndOf(false, end, expected, paths.slice(i + 1), maxRecordBytes, s.path),
    );
  }
  for (const d of decisions) {
    if (d.kind === "tail") {
      const tail: Damage = {
        path: s.path,
        offset: 0,
        code: "TornWrite",
        reason: d.reason,
        tailSegments: [s.path],
      };
      return _tailSegment(coreId, segs[i], tail, s.fileSizeBytes);
    }
    if (d.kind === "corrupt") {
      s.state = "corrupted";
      s.damage.push({ path: s.path, offset: 0, code: d.code, reason: d.reason });
    }
  }
  return s;
}

function _size(path: string): number {
  try {
    return statPath(path).size;
  } catch (e) {
    // Gone since it was listed (a segment retired under us): nothing to count.
    if (isMissing(e)) return 0;
    throw e;
  }
}

/** A segment after the start of its core's crash tail, not read. */
function _tailSegment(
  coreId: number,
  seg: { index: number; path: string },
  tail: Damage,
  fileSizeBytes = _size(seg.path),
): SegmentScan {
  return {
    coreId,
    index: seg.index,
    path: seg.path,
    fileSizeBytes,
    entries: 0,
    types: { put: 0, delete: 0, checkpoint: 0, commit: 0, epochBarrier: 0 },
    validEndOffset: 0,
    preallocatedBytes: 0,
    state: "crashTail",
    damage: [],
    crashTail: tail,
  };
}

async function _scanSegment(
  config: PerCoreWalConfig,
  coreId: number,
  seg: { index: number; path: string },
  place: { isLast: boolean; later: string[]; expectedFirst: number | undefined },
  progress: (bytes: number) => void,
): Promise<SegmentScan> {
  const s: SegmentScan = {
    coreId,
    index: seg.index,
    path: seg.path,
    fileSizeBytes: _size(seg.path),
    entries: 0,
    types: { put: 0, delete: 0, checkpoint: 0, commit: 0, epochBarrier: 0 },
    validEndOffset: 0,
    preallocatedBytes: 0,
    state: "clean",
    damage: [],
  };
  let reader: PerCoreWalReader;
  try {
    reader = await PerCoreWalReader.open(seg.path, {
      maxRecordBytes: config.options.maxRecordBytes,
      isLastSegment: place.isLast,
      laterSegments: place.later,
      expectedFirstSequence: place.expectedFirst,
    });
  } catch (e) {
    if (!(e instanceof PerCoreWalError)) throw e;
    s.state = "corrupted";
    s.damage.push({ path: seg.path, offset: e.offset ?? 0, code: e.code, reason: e.message });
    return s;
  }
  using _ = reader;
  s.header = reader.header;
  while (true) {
    const batch = await reader.readBatch(4096);
    for (const r of batch) {
      if (r.kind === "entry") {
        const e = r.entry;
        s.types[e.operation.type]++;
        continue;
      }
      if (r.kind === "end") {
        s.preallocatedBytes = r.preallocatedBytes;
        if (r.offset === 0) s.state = "unstarted";
        else if (r.preallocatedBytes > 0 && s.state === "clean") s.state = "zeroTail";
      } else if (r.kind === "torn") {
        s.torn = { path: seg.path, offset: r.offset, code: "TornWrite", reason: r.reason };
        if (s.state !== "corrupted") s.state = "tornTail";
      } else {
        s.state = "corrupted";
        s.damage.push({ path: seg.path, offset: r.offset, code: r.code, reason: r.reason });
        if (r.resumeAt !== undefined && reader.header !== undefined) {
          // Go on after the damage, as salvage does, to find all of it.
          reader.resume(r.resumeAt);
          break;
        }
      }
    }
    const tail = batch[batch.length - 1];
    progress(tail.offset);
    if (tail.kind !== "entry" && !(tail.kind === "corrupted" && tail.resumeAt !== undefined)) {
      break;
    }
    if (tail.kind === "corrupted" && reader.header === undefined) break;
  }
  const st = reader.stats;
  s.entries = st.entryCount;
  s.validEndOffset = st.validEndOffset;
  if (st.entryCount > 0) {
    s.firstSequence = st.firstSequence;
    s.lastSequence = st.lastSequence;
    s.minEpoch = st.minEpoch;
    s.maxEpoch = st.maxEpoch;
  }
  return s;
}

/** Segment files of cores beyond the WAL's number of cores. */
function _extraSegments(config: PerCoreWalConfig): Damage[] {
  const out: Damage[] = [];
  for (const e of readDirectory(config.baseDir)) {
    const p = parseSegmentFileName(config.options.segmentPattern, e.name);
    if (p === undefined || p.coreId < config.numCores) continue;
    out.push({
      path: `${config.baseDir}/${e.name}`,
      offset: 0,
      code: "Corrupted",
      reason: `a segment of core ${p.coreId}, beyond the WAL's ${config.numCores} cores`,
    });
  }
  return out;
}
