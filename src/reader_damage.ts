/**
 * What a reader's damage means (docs/FORMAT.md, section 8): at the first record that does not
 * check, whether the rest of the segment is zeros (the end), a torn tail, a crash tail (batches
 * never acknowledged), or corruption (acknowledged data lost). Reads the rest of the segment
 * through the reader's {@linkcode ReadWindow}; off the hot path (once per segment at most).
 *
 * @module
 */

import {
  batchMarkerClaim,
  checkRecord,
  type DecodeContext,
  R_CORE,
  R_FLAGS,
  R_LENGTH,
  R_PAD,
  R_TYPE,
  RECORD_HEADER_BYTES,
  RecordType,
  type SegmentHeader,
} from "./format.ts";
import { type DamageFacts, damageNeedsClaim, decideDamage } from "./damage_table.ts";
import type { ReadWindow } from "./read_window.ts";
import type { ReadResult } from "./read_result.ts";
import { firstNonZeroWord } from "./zero_bytes.ts";

/** The unit a disk writes atomically, as the crash model of section 8 assumes. */
const SECTOR = 512;

/** What the classification knows of the segment and of the reader's place in it. */
export interface DamageContext {
  /** The segment's bytes (refilled as the classification reads on). */
  readonly bytes: ReadWindow;
  /** The segment header (undefined: zero). */
  readonly header: SegmentHeader | undefined;
  /** The file's size (as read). */
  readonly fileSizeBytes: number;
  /** The record checks' context. */
  readonly decode: DecodeContext;
  /** Whether this is the core's last segment. */
  readonly isLast: boolean;
  /** Whether the reader was given the core's later segments. */
  readonly hasLater: boolean;
  /** The sequence the segment's first record must have, if known. */
  readonly expectedFirst: number | undefined;
  /** The sequence expected at the damage: the first one missing. */
  readonly expected: number;
  /** The largest acknowledged sequence the later segments' batch markers claim. */
  laterClaim(): Promise<number>;
}

/** The classification, and the largest batch-marker claim seen after the damage (0: none). */
export interface DamageVerdict {
  /** How the records end. */
  result: Exclude<ReadResult, { kind: "entry" }>;
  /** The largest acknowledged sequence claimed by markers after the damage. */
  claim: number;
}

/**
 * Classifies what follows the valid records from `pos` by the decision table
 * (`src/damage_table.ts`): only zeros (end), a torn or crash tail, or corruption.
 */
export async function classifyDamage(
  d: DamageContext,
  pos: number,
  reason: string,
  code: "ChecksumMismatch" | "Corrupted",
  zeroStart = false,
): Promise<DamageVerdict> {
  // Only damage a power loss can leave (a sector of the record left as zeros) may be a crash
  // tail; other damage (a flipped bit) is classified as in version 1.
  const crashShaped = d.header !== undefined && d.header.version >= 2 &&
    await _crashShaped(d, pos);
  const { nonZero, validAt, claim } = await _scan(d, pos, crashShaped);
  const facts: DamageFacts = {
    at: pos,
    what: zeroStart ? "zeros followed by non-zero bytes" : reason,
    code,
    hasHeader: d.header !== undefined,
    nonZero,
    crashShaped,
    validAt,
    isLast: d.isLast,
    laterKnown: d.hasLater,
    missing: d.expected,
    expectedFirst: d.expectedFirst,
    claimHere: claim,
  };
  if (damageNeedsClaim(facts)) facts.claimLater = await d.laterClaim();
  const { row: _row, ...result } = decideDamage(facts);
  if (result.kind === "end") {
    return {
      result: { kind: "end", offset: pos, preallocatedBytes: d.fileSizeBytes - pos },
      claim: 0,
    };
  }
  return { result, claim: crashShaped ? claim : 0 };
}

/**
 * Whether the damaged record at `pos` looks like a power loss: a batch reaches the disk in
 * 512-byte sectors, each written or left as it was (zeros: segments are zero-filled and never
 * rewritten). So some sector's share of the record (padding excluded), or of its CRC and
 * length fields, is all zero.
 */
async function _crashShaped(d: DamageContext, pos: number): Promise<boolean> {
  const w = d.bytes;
  const size = d.fileSizeBytes;
  await w.fill(pos, RECORD_HEADER_BYTES);
  const rel = pos - w.start;
  const zeroIn = (from: number, to: number) => {
    for (let s = from - (from % SECTOR); s < to; s += SECTOR) {
      const lo = Math.max(s, from) - w.start;
      const hi = Math.min(s + SECTOR, to) - w.start;
      let zero = true;
      for (let i = lo; i < hi && zero; i++) zero = w.buf[i] === 0;
      if (zero) return true;
    }
    return false;
  };
  if (zeroIn(pos, Math.min(pos + 8, size))) return true;
  if (pos + RECORD_HEADER_BYTES > size) return false;
  const length = w.view.getUint32(rel + R_LENGTH, true);
  if (length < RECORD_HEADER_BYTES || length > d.decode.maxRecordBytes + 0xffff) return false;
  const pad = w.view.getUint16(rel + R_PAD, true);
  const end = Math.min(pos + length - (pad <= length - RECORD_HEADER_BYTES ? pad : 0), size);
  await w.fill(pos, end - pos);
  return zeroIn(pos, end);
}

/**
 * Whether any byte from `from` on is non-zero, and the first valid record after `from`. With
 * `all`, goes on to the end of the file and returns the largest batch-marker claim seen.
 */
async function _scan(
  d: DamageContext,
  from: number,
  all: boolean,
): Promise<{ nonZero: boolean; validAt?: number; claim: number }> {
  const w = d.bytes;
  let nonZero = false;
  let validAt: number | undefined;
  let claim = 0;
  const size = d.fileSizeBytes;
  let q = from;
  while (q < size) {
    if (q < w.from || q + Math.min(RECORD_HEADER_BYTES, size - q) > w.start + w.length) {
      // As much as the buffer holds is read (a read ahead spliced on, or a new read).
      await w.fill(q, RECORD_HEADER_BYTES);
    }
    const rel = q - w.start;
    const b = w.buf;
    // Zero runs, a word at a time: no non-zero byte and no length field at these offsets.
    if ((rel & 3) === 0 && rel + 12 <= w.length) {
      const u = w.words;
      const x = rel >> 2;
      if (u[x] === 0 && u[x + 1] === 0 && u[x + 2] === 0) {
        // The step above, repeated while it applies, 8 words at a time: on to the last
        // offset whose three words are not all zero (or not all in the buffer).
        q += (firstNonZeroWord(u, x + 3, w.length >> 2) - 2 - x) * 4;
        continue;
      }
    }
    if (b[rel] !== 0) {
      nonZero = true;
      if (d.header === undefined) return { nonZero, claim };
    }
    // A record may start at any offset, whatever its first (CRC) byte; its length field
    // is never zero, which skips zero runs cheaply.
    if (
      q <= from || (b[rel + 4] | b[rel + 5] | b[rel + 6] | b[rel + 7]) === 0 ||
      d.header === undefined || !_recordCouldStart(d, rel, q)
    ) {
      q++;
      continue;
    }
    const len = w.view.getUint32(rel + R_LENGTH, true);
    await w.fill(q, len);
    const at = q - w.start;
    const ok = checkRecord(w.buf, w.view, at, w.length, d.decode);
    if (ok.status !== "ok") {
      q++;
      continue;
    }
    // A valid record is non-zero even when its first (CRC) byte is 0.
    nonZero = true;
    validAt ??= q;
    if (!all) return { nonZero, validAt, claim };
    if (w.buf[at + R_TYPE] === RecordType.batch) {
      claim = Math.max(claim, batchMarkerClaim(w.view, at));
    }
    q += ok.length;
  }
  return { nonZero, validAt, claim };
}

/** A cheap test of whether a record could start at file offset `q` (buffer offset `rel`). */
function _recordCouldStart(d: DamageContext, rel: number, q: number): boolean {
  const w = d.bytes;
  if (rel + RECORD_HEADER_BYTES > w.length) return false;
  const b = w.buf;
  const v = w.view;
  if (b[rel + R_FLAGS] !== 0 || b[rel + R_TYPE] === 0 || b[rel + R_TYPE] > RecordType.batch) {
    return false;
  }
  if (v.getUint16(rel + R_CORE, true) !== d.decode.coreId) return false;
  const len = v.getUint32(rel + R_LENGTH, true);
  return len >= RECORD_HEADER_BYTES && len <= d.decode.maxRecordBytes + 0xffff &&
    q + len <= d.fileSizeBytes;
}
