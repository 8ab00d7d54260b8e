/**
 * One core's cursor over its segments, in order, checking sequence continuity across them and
 * applying the damage policies. `merge_stream.ts` merges the cursors of every core.
 *
 * @module
 */

import type { PerCoreWalConfig } from "./config.ts";
import { PerCoreWalError } from "./errors.ts";
import { startFacts } from "./damage_table.ts";
import type { ReadResult } from "./read_result.ts";
import { PerCoreWalReader } from "./reader.ts";
import { decideEndOf, decideStartOf } from "./segment_probes.ts";
import { listCoreSegments, unstartedAtEnd } from "./segment_files.ts";
import type { PerCoreWalEntry } from "./types.ts";
import { segmentDamageMessage } from "./segment_message.ts";

/**
 * A place in a core's log: a segment index and a byte offset in it.
 *
 * @example
 * ```ts
 * import type { SegmentOffset } from "@percore/wal";
 *
 * const start: SegmentOffset = { segment: 2, offset: 4096 };
 * console.log(`replay from segment ${start.segment} at byte ${start.offset}`);
 * ```
 */
export interface SegmentOffset {
  /** Segment index. */
  segment: number;
  /** Byte offset in the segment. */
  offset: number;
}

/** An entry and where it lies. */
export interface PositionedEntry {
  /** The entry. */
  entry: PerCoreWalEntry;
  /** Its segment index. */
  segment: number;
  /** Its offset in the segment. */
  offset: number;
  /** Its length in bytes, padding included. */
  length: number;
}

/** How a cursor ended a segment (every segment it opened gets one). */
export interface SegmentEnd {
  /** The segment file. */
  path: string;
  /** Its index. */
  segment: number;
  /** Whether it was the core's last segment. */
  last: boolean;
  /** The reader's verdict on the end of its records. */
  end: Exclude<ReadResult, { kind: "entry" }>;
  /** Valid entries read from it. */
  entries: number;
  /** Damaged regions skipped in it (salvage). */
  skipped: { offset: number; reason: string }[];
}

/** What to do at damage the reader found. */
export type DamagePolicy = "throw" | "stop" | "skip";

/** Options of a {@linkcode CoreCursor}. */
export interface CursorOptions {
  /** Start here (the first record of segment `start.segment` if `offset` is 0). */
  start?: SegmentOffset & { sequence?: number };
  /** Read nothing at or after this place (a live WAL: its durable end). */
  end?: SegmentOffset;
  /** Stop before the first entry of a later epoch (epochs never decrease within a core). */
  toEpoch?: number;
  /** Skip entries of earlier epochs. */
  fromEpoch?: number;
  /** At a torn tail: "stop" (default) or "throw". */
  onTorn?: "stop" | "throw";
  /** At corruption: "throw" (default), "stop", or "skip" to the next valid record (salvage). */
  onCorrupt?: DamagePolicy;
  /** Called when a segment is finished. */
  onSegmentEnd?: (end: SegmentEnd) => void;
  /**
   * At a segment that does not continue the previous one's sequence (a segment is missing) or
   * whose header names another core or index: "throw" (default), "stop", or "skip" (salvage:
   * go on with it, or past it for a foreign header).
   */
  onGap?: DamagePolicy;
  /** Called at such a segment, with what is wrong. */
  onGapFound?: (gap: { path: string; segment: number; reason: string }) => void;
  /**
   * The core's log must begin at sequence 1 (nothing retired): recovery without a usable
   * checkpoint. A later first segment is a gap.
   */
  requireBeginning?: boolean;
  /** Entries decoded ahead (memory per core: this many entries and a 1 MiB buffer). Default 64. */
  batch?: number;
  /**
   * Read each segment's next 1 MiB while the current one is decoded (two buffers per core).
   * Close such a cursor with `closeAsync()`, which waits for a read in flight.
   */
  readAhead?: boolean;
}

/** Entries a cursor decodes ahead by default. */
const BATCH = 64;

/** Iterates one core's entries in order, across segments, checking sequence continuity. */
export class CoreCursor {
  /** The core. */
  readonly coreId: number;
  /** The current entry (that of `current`), or undefined when the cursor is finished. */
  entry: PerCoreWalEntry | undefined;
  /** The first entry beyond `toEpoch`, if the cursor stopped there (a checkpoint's barrier). */
  stoppedAt: PositionedEntry | undefined;
  readonly #config: PerCoreWalConfig;
  readonly #o: CursorOptions;
  readonly #segments: { index: number; path: string }[];
  #segIdx = 0;
  #reader: PerCoreWalReader | undefined;
  /** The batch read: entries, their offsets and lengths; `#end` follows them if it came. */
  readonly #entries: PerCoreWalEntry[] = [];
  readonly #offsets: number[] = [];
  readonly #lengths: number[] = [];
  #count = 0;
  #end: Exclude<ReadResult, { kind: "entry" }> | undefined;
  /** The next item of the batch: an entry below `#count`, `#end` at `#count`. */
  #bufPos = 0;
  /** Where `entry` lies, for `current` (made when asked for: `mergeSegments` needs none). */
  #atSegment = 0;
  #atOffset = 0;
  #atLength = 0;
  #current: PositionedEntry | undefined;
  #segEntries = 0;
  #skipped: { offset: number; reason: string }[] = [];
  #done = false;
  /** Whether the first segment read was checked against the start (a checkpoint's barrier). */
  #startChecked = false;
  /** The sequence the next segment must start at, once a segment with a header was read. */
  #nextFirst: number | undefined;

  private constructor(config: PerCoreWalConfig, coreId: number, options: CursorOptions) {
    this.coreId = coreId;
    this.#config = config;
    this.#o = options;
    const from = options.start?.segment ?? -1;
    const to = options.end?.segment ?? Infinity;
    const segs = listCoreSegments(config, coreId).filter((s) => s.index >= from && s.index <= to);
    // The segment prepared ahead (all zeros, never started) is not the core's last segment.
    // With an end (a live WAL's durable end) it is beyond the end already.
    if (options.end === undefined) {
      segs.length -= unstartedAtEnd(segs);
    }
    this.#segments = segs;
  }

  /** Opens a cursor on its first entry (or finished, if there is none). */
  static async open(
    config: PerCoreWalConfig,
    coreId: number,
    options: CursorOptions = {},
  ): Promise<CoreCursor> {
    const c = new CoreCursor(config, coreId, options);
    try {
      await c.advance();
    } catch (e) {
      await c.closeAsync();
      throw e;
    }
    return c;
  }

  /** Moves to the next entry. */
  /**
   * Moves to the next entry: synchronously (returning undefined) when it is already decoded,
   * else through a promise. Await the result only if it is a promise.
   */
  advance(): Promise<void> | undefined {
    return this.#step(false) ? undefined : this.#advanceSlow();
  }

  /** The current entry and where it lies, or undefined when the cursor is finished. */
  get current(): PositionedEntry | undefined {
    const entry = this.entry;
    if (entry === undefined) return undefined;
    return this.#current ??= {
      entry,
      segment: this.#atSegment,
      offset: this.#atOffset,
      length: this.#atLength,
    };
  }

  /** Takes the next buffered entry; true when `entry` is settled without I/O. */
  #step(io: boolean): boolean {
    while (!this.#done) {
      const i = this.#bufPos;
      if (i >= this.#count) {
        // The result that ends the segment is the slow path's.
        if (i === this.#count && this.#end !== undefined) return false;
        // The next batch, if it is in the reader's buffer already: small batches without an
        // await each (the entries decoded ahead are what survives a young-generation GC).
        const n = this.#reader?.readBufferedEntries(
          this.#entries,
          this.#offsets,
          this.#lengths,
          this.#o.batch ?? BATCH,
        );
        if (n === undefined || n === 0) return io;
        this.#count = n;
        this.#end = undefined;
        this.#bufPos = 0;
        continue;
      }
      const e = this.#entries[i];
      if (this.#o.toEpoch !== undefined && e.epoch > this.#o.toEpoch) return false;
      this.#bufPos = i + 1;
      this.#segEntries++;
      if (this.#o.fromEpoch !== undefined && e.epoch < this.#o.fromEpoch) continue;
      this.entry = e;
      this.#current = undefined;
      this.#atSegment = this.#segments[this.#segIdx].index;
      this.#atOffset = this.#offsets[i];
      this.#atLength = this.#lengths[i];
      return true;
    }
    this.#unset();
    return true;
  }

  #unset(): void {
    this.entry = undefined;
    this.#current = undefined;
  }

  /** Whether the batch is used up (its end result too, if it had one). */
  #drained(): boolean {
    return this.#bufPos > this.#count || (this.#bufPos === this.#count && this.#end === undefined);
  }

  /** Forgets the batch. */
  #clearBatch(): void {
    this.#count = 0;
    this.#end = undefined;
    this.#bufPos = 0;
  }

  async #advanceSlow(): Promise<void> {
    while (!this.#done) {
      if (this.#drained()) {
        if (!await this.#fill()) continue;
      }
      if (this.#step(false)) return;
      // #step stopped before the end of a segment or the first entry beyond `toEpoch`.
      const i = this.#bufPos++;
      if (i === this.#count) {
        await this.#endOfSegment(this.#end!);
        continue;
      }
      this.stoppedAt = {
        entry: this.#entries[i],
        segment: this.#segments[this.#segIdx].index,
        offset: this.#offsets[i],
        length: this.#lengths[i],
      };
      await this.#finish();
      return;
    }
    this.#unset();
  }

  /** Reads the next batch; false if it moved to another segment instead. */
  async #fill(): Promise<boolean> {
    if (this.#reader === undefined) {
      if (this.#segIdx >= this.#segments.length) {
        const s = this.#o.start;
        if (this.#segments.length === 0 && s !== undefined && !this.#startChecked) {
          // The segment holding the checkpoint's barrier is gone: replay cannot start.
          this.#startChecked = true;
          this.#gap(
            this.#config.segmentPath(this.coreId, s.segment),
            s.segment,
            "it holds the checkpoint's barrier and is missing",
          );
        }
        await this.#finish();
        return false;
      }
      await this.#openSegment();
      return false;
    }
    const { count, end } = await this.#reader.readEntries(
      this.#entries,
      this.#offsets,
      this.#lengths,
      this.#o.batch ?? BATCH,
    );
    this.#count = count;
    this.#end = end;
    this.#bufPos = 0;
    return true;
  }

  async #openSegment(): Promise<void> {
    const seg = this.#segments[this.#segIdx];
    const isLast = this.#segIdx === this.#segments.length - 1;
    const start = this.#o.start !== undefined && seg.index === this.#o.start.segment
      ? this.#o.start
      : undefined;
    const end = this.#o.end !== undefined && seg.index === this.#o.end.segment
      ? this.#o.end.offset
      : undefined;
    const reader = await PerCoreWalReader.open(seg.path, {
      maxRecordBytes: this.#config.options.maxRecordBytes,
      isLastSegment: isLast || end !== undefined,
      laterSegments: this.#segments.slice(this.#segIdx + 1).map((x) => x.path),
      // Segment 0 of a core starts at sequence 1.
      expectedFirstSequence: this.#nextFirst ?? (seg.index === 0 ? 1 : undefined),
      limitOffset: end,
      readAhead: this.#o.readAhead,
      startOffset: start?.offset || undefined,
      startSequence: start?.offset ? start.sequence : undefined,
    });
    const h = reader.header;
    const isFirst = this.#segIdx === 0 && !this.#startChecked;
    this.#startChecked ||= isFirst;
    const facts = startFacts(h, this.coreId, seg.index, this.#previousLast(), isFirst, {
      startSegment: this.#o.start?.segment,
      requireBeginning: this.#o.requireBeginning,
    });
    const paths = this.#segments.slice(this.#segIdx).map((x) => x.path);
    const d = await decideStartOf(facts, paths, this.#config.options.maxRecordBytes);
    if (d.kind === "tail") {
      // The previous segment's last batches were lost while this one's first reached the disk,
      // and no batch marker from here on says they were acknowledged: a crash tail, the end.
      reader.close();
      await this.#tail(seg, d.reason);
      return;
    }
    if (d.kind === "corrupt") {
      const policy = this.#o.onGap ?? "throw";
      if (policy !== "skip" || d.foreign) reader.close();
      this.#gap(seg.path, seg.index, d.reason);
      if (policy === "stop") {
        await this.#finish();
        return;
      }
      if (d.foreign) {
        this.#segIdx++;
        return;
      }
      // Salvage reads on past a missing segment.
    }
    this.#reader = reader;
    this.#clearBatch();
    this.#segEntries = 0;
    this.#skipped = [];
  }

  async #endOfSegment(r: Exclude<ReadResult, { kind: "entry" }>): Promise<void> {
    const seg = this.#segments[this.#segIdx];
    const reader = this.#reader!;
    if (reader.header === undefined && r.kind === "end") {
      // An all-zero segment before started ones: the crash tail begins here, or it is damage.
      const d = await decideEndOf(
        false,
        r,
        // Segment 0 of a core starts at sequence 1.
        this.#nextFirst ?? (seg.index === 0 ? 1 : undefined),
        this.#segments.slice(this.#segIdx + 1).map((x) => x.path),
        this.#config.options.maxRecordBytes,
        seg.path,
      );
      if (d.kind === "tail") {
        this.#reader = undefined;
        await reader.closeAsync();
        await this.#tail(seg, d.reason);
        return;
      }
      if (d.kind === "corrupt") {
        this.#reader = undefined;
        await reader.closeAsync();
        this.#gap(seg.path, seg.index, d.reason);
        if ((this.#o.onGap ?? "throw") === "stop") await this.#finish();
        else this.#segIdx++;
        return;
      }
    }
    if (r.kind === "corrupted") {
      // A zero header followed by data is damage too (its records cannot even be checked).
      const policy = this.#o.onCorrupt ?? "throw";
      if (policy === "skip" && r.resumeAt !== undefined && reader.header !== undefined) {
        this.#skipped.push({ offset: r.offset, reason: r.reason });
        reader.resume(r.resumeAt);
        this.#clearBatch();
        return;
      }
      if (policy === "throw") throw _damage(seg.path, this.coreId, r.code, r.reason, r.offset);
    }
    if (r.kind === "torn" && this.#o.onTorn === "throw") {
      throw _damage(seg.path, this.coreId, "TornWrite", r.reason, r.offset);
    }
    const last = this.#segIdx === this.#segments.length - 1;
    this.#o.onSegmentEnd?.({
      path: seg.path,
      segment: seg.index,
      last,
      end: r,
      entries: this.#segEntries,
      skipped: this.#skipped,
    });
    // Where the next segment must start, even if this one held no entry.
    if (reader.header !== undefined) this.#nextFirst = reader.stats.lastSequence + 1;
    this.#reader = undefined;
    await reader.closeAsync();
    const stop = r.kind === "torn" ||
      (r.kind === "corrupted" && (this.#o.onCorrupt ?? "throw") !== "skip");
    if (stop) await this.#finish();
    else this.#segIdx++;
  }

  /** The last sequence of the previous segment read, if one was. */
  #previousLast(): number | undefined {
    return this.#nextFirst === undefined ? undefined : this.#nextFirst - 1;
  }

  /**
   * A crash tail that begins at the start of `seg` (a rotation's batches in flight): reported as
   * a torn end there, and the end of this core's log.
   */
  async #tail(seg: { index: number; path: string }, reason: string): Promise<void> {
    if (this.#o.onTorn === "throw") {
      throw _damage(seg.path, this.coreId, "TornWrite", reason, 0);
    }
    this.#o.onSegmentEnd?.({
      path: seg.path,
      segment: seg.index,
      last: false,
      end: { kind: "torn", offset: 0, reason },
      entries: 0,
      skipped: [],
    });
    await this.#finish();
  }

  /** Applies the gap policy outside #openSegment (a missing start segment). */
  #gap(path: string, segment: number, reason: string): void {
    this.#o.onGapFound?.({ path, segment, reason });
    if ((this.#o.onGap ?? "throw") === "throw") {
      throw new PerCoreWalError("Corrupted", `Segment "${path}": ${reason}`, {
        coreId: this.coreId,
        segment: path,
      });
    }
  }

  async #finish(): Promise<void> {
    this.#done = true;
    this.#unset();
    await this.closeAsync();
  }

  /**
   * Closes the open segment. Idempotent. With `readAhead`, a read in flight completes after it;
   * `closeAsync()` waits for it.
   */
  close(): void {
    this.#reader?.close();
    this.#reader = undefined;
  }

  /** Closes the open segment after a read ahead in flight. Idempotent. */
  async closeAsync(): Promise<void> {
    const r = this.#reader;
    this.#reader = undefined;
    await r?.closeAsync();
  }
}

function _damage(
  path: string,
  coreId: number,
  code: "ChecksumMismatch" | "Corrupted" | "TornWrite",
  reason: string,
  offset: number,
) {
  return new PerCoreWalError(code, segmentDamageMessage("read", path, reason, offset), {
    coreId,
    segment: path,
    offset,
  });
}
