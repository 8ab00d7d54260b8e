/**
 * The unshipped measure of one core, in bytes of the WAL: the records after the shipped mark's
 * position up to the durable end, across segments (docs/SHIPPING.md, "The unshipped limit"). It
 * is what `status()` reports, what `maxUnshippedBytes` compares with, and what `dropOldest`
 * chooses segments from. Read side: reads segment files, never loads the engine.
 *
 * @module
 */

import type { PerCoreWalConfig } from "../config.ts";
import { SEGMENT_DATA_OFFSET } from "../format.ts";
import { PerCoreWalReader } from "../reader.ts";
import { listCoreSegments } from "../segment_files.ts";
import { headerFirstSequence } from "../segment_probes.ts";

/** A position in a core's log: segment, the offset after a record, and that record's sequence. */
export interface LogEnd {
  /** Segment index. */
  segment: number;
  /** The byte offset where the next record goes. */
  offset: number;
  /** The sequence of the last record before `offset` (0: none). */
  sequence: number;
}

/** One segment's part of the unshipped bytes. */
export interface UnshippedSpan {
  /** Segment index. */
  segment: number;
  /** The first unshipped sequence in it. */
  firstSequence: number;
  /** The last durable sequence in it. */
  lastSequence: number;
  /** Bytes of its records from `firstSequence` to `lastSequence` (headers, bodies, padding). */
  bytes: number;
  /**
   * Whether the segment is sealed and wholly durable: before the segment of the durable end.
   * Only such a segment may be dropped (`dropOldest`).
   */
  sealed: boolean;
}

/** What {@linkcode UnshippedMeter.measure} found. */
export interface UnshippedMeasure {
  /** The unshipped bytes, the sum of the spans' bytes. */
  bytes: number;
  /** Per segment holding unshipped durable records, oldest first. */
  spans: UnshippedSpan[];
}

/** Where the next record of a segment starts and its sequence. */
interface _Cursor {
  segment: number;
  offset: number;
  next: number;
}

/**
 * Measures one core's unshipped bytes. Keeps what it learnt between calls (each segment's first
 * sequence, a sealed segment's end, where the shipped mark's record ends), so a call reads only
 * the records shipped since the last one.
 */
export class UnshippedMeter {
  readonly #config: PerCoreWalConfig;
  readonly #coreId: number;
  /** Segment index to its header's first sequence (a header never changes once written). */
  readonly #firsts = new Map<number, number>();
  /** A sealed segment's end of records and last sequence. */
  readonly #sealed = new Map<number, { offset: number; last: number }>();
  /** After the shipped mark's record (the last measure's mark). */
  #mark: _Cursor | undefined;
  /** The end of the valid records in the files (a source without known durable ends). */
  #filesEnd: _Cursor | undefined;
  /** The last durable end given: a segment sealed since is read on from there, not scanned. */
  #lastEnd: _Cursor | undefined;

  constructor(config: PerCoreWalConfig, coreId: number) {
    this.#config = config;
    this.#coreId = coreId;
  }

  /**
   * The bytes of core's records after sequence `shipped` up to `end` (the durable end: a
   * manager's `syncedPositions()`), or, with `end` undefined, up to the end of the valid records
   * in the files (another process's WAL). Segment headers and preallocated space are not
   * counted; records of an atomic batch are counted whole. `shippedAt`, where the record of
   * sequence `shipped` ends (the shipper's reader knows), spares reading up to it.
   */
  async measure(
    shipped: number,
    end?: LogEnd,
    shippedAt?: { segment: number; offset: number; next: number },
  ): Promise<UnshippedMeasure> {
    // Where the shipped mark's record ends, when the caller knows it: nothing to read for it.
    if (shippedAt !== undefined && shippedAt.next === shipped + 1) this.#mark = { ...shippedAt };
    const segs = await this.#started();
    if (segs.length === 0) return { bytes: 0, spans: [] };
    const stop = end ?? await this.#endOfFiles(segs[segs.length - 1]);
    const known = this.#lastEnd;
    if (
      known === undefined || stop.segment > known.segment ||
      (stop.segment === known.segment && stop.offset >= known.offset)
    ) {
      this.#lastEnd = { segment: stop.segment, offset: stop.offset, next: stop.sequence + 1 };
    }
    const next = shipped + 1;
    if (next > stop.sequence) return { bytes: 0, spans: [] };
    const mark = await this.#markCursor(segs, next, stop);
    const spans: UnshippedSpan[] = [];
    for (const s of segs) {
      if (s.index < mark.segment || s.index > stop.segment) continue;
      const from = s.index === mark.segment ? mark.offset : SEGMENT_DATA_OFFSET;
      const first = s.index === mark.segment ? mark.next : s.first;
      const sealed = s.index < stop.segment;
      const to = sealed ? await this.#sealedEnd(s) : { offset: stop.offset, last: stop.sequence };
      if (to.last < first) continue;
      spans.push({
        segment: s.index,
        firstSequence: first,
        lastSequence: to.last,
        bytes: Math.max(0, to.offset - from),
        sealed,
      });
    }
    return { bytes: spans.reduce((n, s) => n + s.bytes, 0), spans };
  }

  /** The core's segments that have a header, with their first sequences. */
  async #started(): Promise<{ index: number; path: string; first: number }[]> {
    const out = [];
    const seen = new Set<number>();
    for (const s of listCoreSegments(this.#config, this.#coreId)) {
      seen.add(s.index);
      let first = this.#firsts.get(s.index);
      if (first === undefined) {
        first = await headerFirstSequence(s.path, this.#config.options.maxRecordBytes);
        if (first === undefined) continue; // prepared ahead, or its header not written yet
        this.#firsts.set(s.index, first);
      }
      out.push({ ...s, first });
    }
    // Retired segments: forget them.
    for (const k of this.#firsts.keys()) if (!seen.has(k)) this.#firsts.delete(k);
    for (const k of this.#sealed.keys()) if (!seen.has(k)) this.#sealed.delete(k);
    return out;
  }

  /** Where the record after sequence `next - 1` starts, reading on from the last measure. */
  async #markCursor(
    segs: { index: number; path: string; first: number }[],
    next: number,
    stop: LogEnd,
  ): Promise<_Cursor> {
    // The segment holding sequence `next` (or the oldest left, when retired before it).
    let seg = segs[0];
    for (const s of segs) if (s.first <= next && s.index <= stop.segment) seg = s;
    const m = this.#mark;
    const cursor = m !== undefined && m.segment === seg.index && m.next <= next
      ? { ...m }
      : { segment: seg.index, offset: SEGMENT_DATA_OFFSET, next: seg.first };
    if (cursor.next < next) {
      await this.#readOn(seg.path, cursor, next, seg.index === stop.segment ? stop : undefined);
    }
    this.#mark = cursor;
    return cursor;
  }

  /**
   * Moves `cursor` past the whole records of segment `path` with sequences below `next`, within
   * `limit` when given.
   */
  async #readOn(path: string, cursor: _Cursor, next: number, limit?: LogEnd): Promise<void> {
    using r = await PerCoreWalReader.open(path, {
      maxRecordBytes: this.#config.options.maxRecordBytes,
      startOffset: cursor.offset,
      startSequence: cursor.next,
      limitOffset: limit?.offset,
      // A measure: where the records end so far (the newest segment is being written).
      liveEnd: true,
    });
    while (cursor.next < next) {
      const batch = await r.readBatch(1024);
      let ended = false;
      for (const x of batch) {
        if (x.kind !== "entry" || x.entry.sequence >= next) {
          ended = true;
          break;
        }
        // An atomic batch is one record: it ends with its last entry (whose offset and length
        // are the record's; the lengths of the others are not to be summed).
        const e = x.entry;
        if (e.batchLast === undefined || e.batchLast === e.sequence) {
          cursor.offset = x.offset + x.length;
          cursor.next = x.entry.sequence + 1;
        }
      }
      if (ended || batch.length === 0) return;
    }
  }

  /**
   * A sealed segment's end of records and last sequence, found once: read on from the furthest
   * place known in it (the last durable end or files' end measured there, or the mark), so that
   * a segment sealed while it was measured costs what was written since, not a scan of it all
   * (a 64 MiB segment of small records took the shipping thread hundreds of milliseconds).
   */
  async #sealedEnd(
    s: { index: number; path: string; first: number },
  ): Promise<{ offset: number; last: number }> {
    let e = this.#sealed.get(s.index);
    if (e === undefined) {
      let from: _Cursor = { segment: s.index, offset: SEGMENT_DATA_OFFSET, next: s.first };
      for (const c of [this.#lastEnd, this.#filesEnd, this.#mark]) {
        if (c !== undefined && c.segment === s.index && c.offset > from.offset) from = { ...c };
      }
      await this.#readOn(s.path, from, Number.MAX_SAFE_INTEGER);
      e = { offset: from.offset, last: from.next - 1 };
      this.#sealed.set(s.index, e);
    }
    return e;
  }

  /** The end of the valid records of the newest started segment (reading on from last time). */
  async #endOfFiles(seg: { index: number; path: string; first: number }): Promise<LogEnd> {
    const f = this.#filesEnd;
    const cursor = f !== undefined && f.segment === seg.index
      ? f
      : { segment: seg.index, offset: SEGMENT_DATA_OFFSET, next: seg.first };
    // Checked as reading them would, without building entries: the first measure of a WAL
    // written beforehand goes through all of it.
    using r = await PerCoreWalReader.open(seg.path, {
      maxRecordBytes: this.#config.options.maxRecordBytes,
      startOffset: cursor.offset,
      startSequence: cursor.next,
      liveEnd: true,
    });
    await r.skimToEnd();
    const { validEndOffset, lastSequence } = r.stats;
    this.#filesEnd = { segment: seg.index, offset: validEndOffset, next: lastSequence + 1 };
    return { segment: seg.index, offset: validEndOffset, sequence: lastSequence };
  }
}
