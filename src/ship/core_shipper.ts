/**
 * One core's shipping loop: read its durable entries, pack them into messages, publish one at a
 * time, each expecting the stream sequence of the previous message on the core's subject, and
 * resume from what the stream last holds after any refusal, error or reconnect. While a message
 * waits for its acknowledgement, the entries of the next one are read (never published: one
 * message of a core is in flight at a time).
 *
 * @module
 */

import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { PerCoreWalError } from "../errors.ts";
import type { PerCoreWalEntry } from "../types.ts";
import { type EntryBatch, sleep } from "../watch.ts";
import { decodeFrame, encodeFrame, encodeGapFrame, frameEntryBytes } from "./frame.ts";
import type { ShipSettings } from "./options.ts";
import type { LogEnd, UnshippedMeasure, UnshippedMeter } from "./unshipped.ts";

/**
 * The least time between the starts of two measures of the unshipped bytes: acknowledgements
 * come hundreds of times a second, and each measure reopens a segment and reads what was shipped
 * since the last one (with no pause they ran back to back, a fifth of the shipping thread's CPU).
 */
export const MEASURE_GAP_MS = 10;

/** What a core shipper does now. */
export type CoreShipState = "starting" | "shipping" | "idle" | "retrying" | "stopped" | "failed";

/**
 * Internal hooks of the shipper for the WAL's retention (helper "retain", `src/ship_marks.ts`):
 * `onShipped` after each acknowledgement (the marks, paced: `ship_to_nats.ts`), `holdAppends` when
 * the unshipped entries of a core cross `unshippedLimitRecords` (held) and fall below it again.
 */
export interface ShipperHooks {
  /** Called after the stream acknowledged a core's entries through `lastSequence`. */
  onShipped?(coreId: number, lastSequence: number): void | Promise<void>;
  /** The number of unshipped entries of a core above which `holdAppends(core, true)` is called. */
  unshippedLimitRecords?: number;
  /** The unshipped bytes of a core (`unshipped.ts`) above which its appends are held. */
  unshippedLimitBytes?: number;
  /** Called when a core's unshipped entries or bytes cross a limit (`held`) or fall below. */
  holdAppends?(coreId: number, held: boolean): void;
  /** The opt-in `dropOldest` mode of the limits: gives up the oldest segments, holds nothing. */
  dropOldest?: boolean;
  /**
   * Gives up core `coreId`'s entries `from` to `to` (`bytes` of the WAL, when known) unshipped:
   * moves the durable mark past them and records the gap to declare in the same write, then
   * says so loudly (`reason`: why, when not a `dropOldest` drop). Resolves once both are durable.
   * Set with the marks (`retain`): `dropOldest`, and the ranges the WAL or the stream lost.
   */
  dropUnshipped?(
    coreId: number,
    from: number,
    to: number,
    bytes: number | undefined,
    reason?: string,
  ): Promise<void>;
  /** The stream holds core `coreId`'s gap marker or entries through `sequence`. */
  gapShipped?(coreId: number, sequence: number): void;
  /** The durable marks at start: core `coreId`'s mark, and the gap recorded to declare. */
  initialMark?(coreId: number): { shipped: number; gap?: { from: number; to: number } };
  /** Called once the shipper closed (its holds released): the marks' last write and close. */
  closed?(): void | Promise<void>;
  /** Resolves once the marks hold every acknowledgement so far (`drained()` waits for it). */
  marked?(): Promise<void>;
}

/**
 * Opens the stream of a core's durable entries from sequence `from` (undefined: its oldest), in
 * arrays as they are read (one read of the stream per array, not per entry).
 */
export type OpenEntries = (
  coreId: number,
  from: number | undefined,
) => ReadableStream<EntryBatch>;

/** A refusal of the expected last subject sequence (another shipper, or a stale retry). */
export function isWrongLastSequence(e: unknown): boolean {
  return e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamWrongLastSequence;
}

/** One core's shipping loop and its status. */
export class CoreShipper {
  readonly coreId: number;
  readonly subject: string;
  /** The last sequence the stream holds for this core (0: none yet). */
  lastShipped = 0;
  /** The stream sequence of this core's last message in the stream (0: none). */
  lastStreamSequence = 0;
  /** The highest sequence read from the WAL (0: none yet), the read-ahead included. */
  lastRead = 0;
  /**
   * Entries read, not yet acknowledged: the message in flight (its first {@linkcode #inflight}),
   * then those read for the next one (at most a message, and a batch).
   */
  pending: PerCoreWalEntry[] = [];
  pendingBytes = 0;
  /** The unshipped bytes of the WAL as last measured (`unshipped.ts`). */
  unshippedBytes = 0;
  /** The framed size bound of each pending entry (`frameEntryBytes`), computed once. */
  #sizes: number[] = [];
  /** How many pending entries (and their bytes) the message in flight holds. */
  #inflight = 0;
  #inflightBytes = 0;
  /** When the first entry for the next message was read: its linger runs from then. */
  #queuedSince = 0;
  lastAckAt: number | undefined;
  retries = 0;
  state: CoreShipState = "starting";
  error: Error | undefined;
  readonly #s: ShipSettings;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #open: OpenEntries;
  readonly #hooks: ShipperHooks;
  readonly #stop: AbortSignal;
  readonly #onProgress: () => void;
  #needSync = true;
  #reader: ReadableStreamDefaultReader<EntryBatch> | undefined;
  #read: Promise<ReadableStreamReadResult<EntryBatch>> | undefined;
  /** Read ahead: the rest of the last array read (from `#carryAt`), not pending yet. */
  #carry: EntryBatch = { entries: [] };
  #carryAt = 0;
  /** Where each pending entry ends in the log (segment, offset), when the source says. */
  #endSegment: number[] = [];
  #endOffset: number[] = [];
  /** Where the record of the last acknowledged entry ends, when known: the meter starts there. */
  #shippedAt: { segment: number; offset: number; next: number } | undefined;
  #ended = false;
  #held = false;
  #meter: { meter: UnshippedMeter; end: () => LogEnd | undefined } | undefined;
  #measuring: Promise<void> | undefined;
  #measureAgain = false;
  /** Given up unshipped, to be declared in the stream (a gap marker) before the next entries. */
  #gap: { from: number; to: number } | undefined;
  /** What the last measure decided to give up (`dropOldest`), applied by the loop. */
  #dropTo: { to: number; bytes: number } | undefined;
  /**
   * The highest sequence the marks may hold for this core (from the file at start, then every
   * acknowledgement and drop): a checkpoint may have retired entries up to it, never past it.
   */
  #marked = 0;

  constructor(
    coreId: number,
    settings: ShipSettings,
    nats: { js: JetStreamClient; jsm: JetStreamManager },
    open: OpenEntries,
    hooks: ShipperHooks,
    stop: AbortSignal,
    onProgress: () => void,
  ) {
    this.coreId = coreId;
    this.subject = `${settings.subject}.${settings.node}.${coreId}`;
    this.#s = settings;
    this.#js = nats.js;
    this.#jsm = nats.jsm;
    this.#open = open;
    this.#hooks = hooks;
    this.#stop = stop;
    this.#onProgress = onProgress;
    const initial = hooks.initialMark?.(coreId);
    if (initial !== undefined) {
      this.#marked = initial.shipped;
      // Recorded by a shipper that stopped before the stream held its marker: declared first.
      if (initial.gap !== undefined) this.#gap = { ...initial.gap };
    }
  }

  /**
   * Measures the unshipped bytes with `meter` up to `end()` (the durable end; undefined: the
   * end of the files), after each acknowledgement and on {@linkcode remeasure}.
   */
  useMeter(meter: UnshippedMeter, end: () => LogEnd | undefined): void {
    this.#meter = { meter, end };
  }

  /**
   * Measures the unshipped bytes again (one measure at a time: a call during one runs another
   * after it, {@linkcode MEASURE_GAP_MS} after the start of the one before at the earliest), then
   * checks the limits. Resolves when that measure is done.
   */
  remeasure(): Promise<void> {
    if (this.#meter === undefined) return Promise.resolve();
    if (this.#measuring !== undefined) {
      this.#measureAgain = true;
      return this.#measuring;
    }
    const m = this.#meter;
    this.#measuring = (async () => {
      let started = 0;
      do {
        const wait = started + MEASURE_GAP_MS - performance.now();
        if (wait > 0) await sleep(wait, this.#stop).catch(() => {});
        started = performance.now();
        this.#measureAgain = false;
        // The end first: the mark read after it is never behind what the end counts.
        const end = m.end();
        let r: UnshippedMeasure;
        try {
          r = await m.meter.measure(this.shippedOrDropped, end, this.#shippedAt);
        } catch (e) {
          // A segment retired while it was read, or damage the loop reports itself: the last
          // measure stands until the next one.
          if (e instanceof PerCoreWalError) return;
          throw e;
        }
        this.unshippedBytes = r.bytes;
        if (this.#hooks.dropOldest === true) this.#decideDrop(r);
        else this.checkHold();
      } while (this.#measureAgain && !this.#stop.aborted);
    })().finally(() => this.#measuring = undefined);
    return this.#measuring;
  }

  /**
   * `dropOldest`: the oldest sealed (wholly durable, not the segment of the durable end) spans
   * to give up until the core is under its limits; the loop applies it between two publishes.
   */
  #decideDrop(r: UnshippedMeasure): void {
    const maxBytes = this.#hooks.unshippedLimitBytes;
    const maxRecords = this.#hooks.unshippedLimitRecords;
    let bytes = r.bytes;
    let records = this.unshippedRecords;
    const over = () =>
      (maxBytes !== undefined && bytes > maxBytes) ||
      (maxRecords !== undefined && records > maxRecords);
    let to: number | undefined;
    let dropped = 0;
    for (const s of r.spans) {
      if (!over() || !s.sealed) break;
      to = s.lastSequence;
      dropped += s.bytes;
      bytes -= s.bytes;
      records -= s.lastSequence - s.firstSequence + 1;
    }
    // A later decision from the same mark covers an earlier one not applied yet.
    if (to !== undefined && to > (this.#dropTo?.to ?? 0)) this.#dropTo = { to, bytes: dropped };
  }

  /**
   * Gives up what {@linkcode #decideDrop} chose (the mark moves durably, an event says so), and
   * reads on after it; the gap marker goes out before the next entries.
   */
  async #applyDrop(): Promise<void> {
    const d = this.#dropTo;
    this.#dropTo = undefined;
    const from = this.shippedOrDropped + 1;
    if (d === undefined || d.to < from) return;
    await this.#hooks.dropUnshipped!(this.coreId, from, d.to, d.bytes);
    this.#marked = Math.max(this.#marked, d.to);
    this.#gap = { from: this.#gap?.from ?? from, to: d.to };
    this.#drop(d.to);
    if (this.#reader !== undefined && this.lastRead < d.to) {
      // Nothing read past the range: read on after it (its segments are still there: only a
      // checkpoint retires them, and only after the mark moved).
      await this.#closeReader();
      this.#clearPending();
      this.lastRead = d.to;
      this.#reader = this.#open(this.coreId, d.to + 1).getReader();
      this.#ended = false;
    }
  }

  /** Publishes the gap marker of the entries given up, expecting this core's previous message. */
  async #publishGap(): Promise<void> {
    const g = this.#gap!;
    this.state = "shipping";
    const ack = await this.#js.publish(
      this.subject,
      encodeGapFrame(this.coreId, g.from, g.to),
      {
        msgID: `${this.#s.node}.${this.coreId}.gap.${g.from}-${g.to}`,
        expect: { lastSubjectSequence: this.lastStreamSequence },
        timeout: this.#s.publishTimeoutMs,
      },
    );
    this.lastStreamSequence = ack.seq;
    this.lastShipped = g.to;
    this.lastAckAt = Date.now();
    this.error = undefined;
    this.#gap = undefined;
    this.#shipped(g.to);
  }

  /** The core's durable sequence when known without I/O (a manager's), else undefined. */
  durableSequence: (() => number) | undefined;
  /** The first sequence the WAL's files hold for a core (undefined: no segment with a header). */
  firstHeld: ((coreId: number) => Promise<number | undefined>) | undefined;

  /** Entries durable and not acknowledged, as far as known (read, or durable in a manager). */
  get unshippedRecords(): number {
    const end = Math.max(this.lastRead, this.durableSequence?.() ?? 0);
    return Math.max(0, end - this.shippedOrDropped);
  }

  /** The last sequence shipped, or given up unshipped (`dropOldest`): the mark. */
  get shippedOrDropped(): number {
    return Math.max(this.lastShipped, this.#gap?.to ?? 0);
  }

  /** Whether the loop ended: its source ended and everything read was shipped, or it failed. */
  get finished(): boolean {
    return this.state === "stopped" || this.state === "failed";
  }

  /** Resume from the stream's last message before the next publish (after a reconnect). */
  resync(): void {
    this.#needSync = true;
  }

  /** Runs until stopped, the source ends, or a failure that retrying cannot mend. */
  async run(): Promise<void> {
    let failures = 0;
    while (!this.#stop.aborted) {
      try {
        await this.#applyDrop();
        if (this.#needSync) {
          await this.#syncFromStream();
          this.#needSync = false;
        }
        if (this.#gap !== undefined) {
          await this.#publishGap();
          failures = 0;
          continue;
        }
        if (!(await this.#fill())) {
          this.state = "stopped";
          break;
        }
        const acked = this.#publishOne();
        // The next message's entries are read while this one waits for its acknowledgement; the
        // read stops once the acknowledgement (or failure) came, before anything else is done.
        const next = this.#fill(acked);
        try {
          await acked;
        } finally {
          await next.catch(() => {}); // a read failure comes again from the reader's next read
        }
        failures = 0;
      } catch (e) {
        if (this.#stop.aborted) break;
        if (e instanceof PerCoreWalError && e.code === "Retired" && await this.#declareRetired()) {
          continue;
        }
        if (e instanceof PerCoreWalError) {
          // The WAL (Retired, damage) or a corrupted message in the stream: retrying will not
          // mend it. The shipper reports it; nothing is published past it.
          this.state = "failed";
          this.error = e;
          break;
        }
        this.retries++;
        this.state = "retrying";
        this.error = e instanceof Error ? e : new Error(String(e));
        this.#needSync = true;
        this.checkHold();
        // A refusal by another shipper's message: resync at once, then back off if it repeats.
        const wait = Math.min(this.#s.retryMaxMs, 100 * 2 ** Math.min(failures++, 16));
        if (!isWrongLastSequence(e) || failures > 1) {
          await sleep(wait, this.#stop).catch(() => {});
        }
      } finally {
        this.#onProgress();
      }
    }
    await this.#closeReader();
    if (this.state !== "failed") this.state = "stopped";
    this.#onProgress();
  }

  /**
   * The WAL no longer holds the entries after what the stream holds, and the marks allowed their
   * retirement (the stream lost acknowledged messages, or marks from before the gaps were kept):
   * the range the WAL lacks is declared, loudly and in the stream, and the shipping goes on after
   * it. False (the core fails) if the marks did not allow it, or the declaration failed.
   */
  async #declareRetired(): Promise<boolean> {
    const next = this.shippedOrDropped + 1;
    if (next > this.#marked || this.#hooks.dropUnshipped === undefined) return false;
    try {
      await this.#closeReader();
      this.#clearPending();
      const first = await this.firstHeld?.(this.coreId);
      const to = first !== undefined && first > next
        ? Math.min(first - 1, this.#marked)
        : this.#marked;
      await this.#hooks.dropUnshipped(
        this.coreId,
        next,
        to,
        undefined,
        "a checkpoint retired them (the shipped mark allowed it) and the stream lacks them",
      );
      this.#gap = { from: this.#gap?.from ?? next, to };
      this.lastRead = to;
      this.#needSync = true;
      return true;
    } catch {
      return false;
    }
  }

  /** Reads this core's last message in the stream and repositions the reading after it. */
  async #syncFromStream(): Promise<void> {
    const m = await this.#jsm.streams.getMessage(this.#s.stream, { last_by_subj: this.subject });
    let lost = false;
    if (m === null) {
      // The subject holds nothing, though this shipper had messages acknowledged on it. If the
      // stream's sequences went back below the last one acknowledged, or that sequence now holds
      // another subject's message (other cores published after the loss before this one looked),
      // the server lost them (it acknowledges before its fsync): ship again from the start, from
      // the WAL while it holds the entries, else as a declared gap. Otherwise they were purged
      // (limits, or by hand): what they held counts as shipped.
      if (this.lastStreamSequence > 0) {
        const info = await this.#jsm.streams.info(this.#s.stream);
        lost = info.state.last_seq < this.lastStreamSequence;
        if (!lost) {
          const at = await this.#jsm.streams.getMessage(this.#s.stream, {
            seq: this.lastStreamSequence,
          });
          lost = at !== null && at.subject !== this.subject;
        }
        if (lost) this.lastShipped = 0;
      }
      this.lastStreamSequence = 0;
    } else {
      let frame;
      try {
        frame = decodeFrame(m.data);
      } catch (e) {
        throw new PerCoreWalError(
          "Corrupted",
          `Stream "${this.#s.stream}" message ${m.seq} on subject "${this.subject}": ` +
            (e as Error).message,
          { coreId: this.coreId, cause: e },
        );
      }
      if (frame.coreId !== this.coreId) {
        throw new PerCoreWalError(
          "Corrupted",
          `Stream "${this.#s.stream}" message ${m.seq} on subject "${this.subject}" holds core ` +
            `${frame.coreId}'s entries`,
          { coreId: this.coreId },
        );
      }
      this.lastStreamSequence = m.seq;
      const advanced = frame.lastSequence > this.lastShipped;
      this.lastShipped = frame.lastSequence;
      if (advanced) this.#shipped(frame.lastSequence);
    }
    const g = this.#gap;
    if (g !== undefined) {
      // The stream holds the gap marker (its acknowledgement was lost), or the first entries
      // of the range (a message whose acknowledgement was lost): declare only what it lacks.
      if (this.lastShipped >= g.to) this.#gap = undefined;
      else if (this.lastShipped >= g.from) g.from = this.lastShipped + 1;
      else if (this.lastShipped < g.from - 1) {
        // The stream lost acknowledged messages before the range (a server without fsync, a
        // power loss): the mark is past them, so they go into the declared gap too, loudly.
        await this.#hooks.dropUnshipped!(
          this.coreId,
          this.lastShipped + 1,
          g.from - 1,
          undefined,
          "the stream lacks them although it acknowledged them (a server without fsync)",
        );
        g.from = this.lastShipped + 1;
      }
    }
    const mark = this.shippedOrDropped;
    const next = mark + 1;
    this.#drop(mark);
    const readNext = this.pending[0]?.sequence ??
      this.#carry.entries[this.#carryAt]?.sequence ?? this.lastRead + 1;
    // Read on where the stream ends: keep what was read if it continues it, else read again.
    // From an explicit sequence (1 when the stream holds nothing of this core) whenever anything
    // of it was shipped, as far as this shipper or the marks know: after a loss of everything
    // the stream held of this core, what the WAL retired since is then declared (`Retired`,
    // `#declareRetired`), never skipped. Only a core never shipped starts at the oldest entry.
    const known = mark > 0 || lost || this.#marked > 0;
    if (this.#reader === undefined || lost || (known && readNext !== next)) {
      await this.#closeReader();
      // Stopped during the look-up: `stop()` closed the reader it found; a new one would never
      // be closed, and the loop would wait on it for ever.
      this.#stop.throwIfAborted();
      this.#clearPending();
      this.lastRead = mark;
      const stream = this.#open(this.coreId, known ? next : undefined);
      this.#reader = stream.getReader();
      this.#ended = false;
    }
  }

  /** The pending entries read for the next message (after the one in flight). */
  #queued(): number {
    return this.pending.length - this.#inflight;
  }

  /**
   * Forgets every pending entry (read again after a resync or a gap): the arrays kept in step
   * with `pending` (sizes, ends) go with it, or the ends of later messages would be taken from
   * entries thrown away (the meter then starts at a wrong offset).
   */
  #clearPending(): void {
    this.pending = [];
    this.#sizes = [];
    this.#endSegment = [];
    this.#endOffset = [];
    this.pendingBytes = 0;
  }

  /** Drops the pending (and read-ahead) entries through `sequence`. */
  #drop(sequence: number): void {
    let n = 0;
    while (n < this.pending.length && this.pending[n].sequence <= sequence) {
      this.pendingBytes -= this.#sizes[n];
      n++;
    }
    if (n > 0) {
      this.pending.splice(0, n);
      this.#sizes.splice(0, n);
      this.#endSegment.splice(0, n);
      this.#endOffset.splice(0, n);
    }
    if (this.pending.length > 0) return;
    const carry = this.#carry.entries;
    while (this.#carryAt < carry.length && carry[this.#carryAt].sequence <= sequence) {
      this.#carryAt++;
    }
  }

  /** Makes the next read-ahead entry pending; undefined when none is read ahead. */
  #takeCarried(): PerCoreWalEntry | undefined {
    const { entries, ends } = this.#carry;
    const i = this.#carryAt;
    if (i >= entries.length) return undefined;
    this.#carryAt++;
    const e = entries[i];
    if (this.#queued() === 0) this.#queuedSince = performance.now();
    const size = frameEntryBytes(e);
    this.pending.push(e);
    this.#sizes.push(size);
    this.#endSegment.push(ends === undefined ? -1 : ends.segment[i]);
    this.#endOffset.push(ends === undefined ? -1 : ends.offset[i]);
    this.pendingBytes += size;
    return e;
  }

  /** One entry read, or undefined once `linger` resolved (never without it), or at the end. */
  async #readOne(linger: Promise<undefined> | undefined): Promise<PerCoreWalEntry | undefined> {
    const carried = this.#takeCarried();
    if (carried !== undefined) return carried;
    if (this.#ended) return undefined;
    this.#read ??= this.#reader!.read();
    const r = linger === undefined ? await this.#read : await Promise.race([this.#read, linger]);
    if (r === undefined) return undefined;
    this.#read = undefined;
    if (r.done) {
      this.#ended = true;
      return undefined;
    }
    this.#carry = r.value;
    this.#carryAt = 0;
    this.lastRead = r.value.entries[r.value.entries.length - 1].sequence;
    return this.#takeCarried();
  }

  /** Whether the last pending entry leaves an atomic batch incomplete. */
  #inBatch(): boolean {
    const last = this.pending[this.pending.length - 1];
    return last !== undefined && last.batchLast !== undefined && last.batchLast > last.sequence;
  }

  /**
   * Fills `pending` up to one message after the one in flight: waits for a first entry, then
   * until `lingerMs` after it for more (and for the rest of an atomic batch, always). With
   * `until` (the acknowledgement of the message in flight), it stops once that settled, wherever
   * it is: the next call goes on. False when the source ended with nothing left to ship.
   */
  async #fill(until?: Promise<unknown>): Promise<boolean> {
    const s = this.#s;
    let cut = false;
    const stop = until?.then(() => cut = true, () => cut = true).then(() => undefined);
    if (this.#queued() === 0) {
      if (until === undefined) {
        this.state = "idle";
        this.checkHold();
      }
      if ((await this.#readOne(stop)) === undefined) return !this.#ended;
    }
    // One timer per message: entries already queued in the stream come at once, a read waits
    // for more only until the linger ends (and for the rest of an atomic batch, always).
    let expired = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wait = Math.max(0, this.#queuedSince + s.lingerMs - performance.now());
    const linger = new Promise<undefined>((res) =>
      timer = setTimeout(() => {
        expired = true;
        res(undefined);
      }, wait)
    );
    const lingerOrStop = stop === undefined ? linger : Promise.race([linger, stop]);
    try {
      while (
        this.#inBatch() ||
        (this.#queued() < s.maxRecordsPerMessage &&
          this.pendingBytes - this.#inflightBytes < s.maxBytesPerMessage)
      ) {
        // Entries read ahead are taken without waiting; a read of the stream waits.
        if (this.#takeCarried() !== undefined) continue;
        const e = await this.#readOne(!this.#inBatch() ? lingerOrStop : stop);
        if (e === undefined && (this.#ended || expired || cut)) break;
      }
    } finally {
      clearTimeout(timer);
    }
    if (this.#inBatch() && this.#ended) {
      throw new PerCoreWalError(
        "Corrupted",
        `Core ${this.coreId}: the WAL ended inside the atomic batch of sequence ${this.lastRead}`,
        { coreId: this.coreId },
      );
    }
    return true;
  }

  /** How many pending entries the next message takes: within the limits, batches whole. */
  #take(): number {
    const s = this.#s;
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length) {
      const e = this.pending[n];
      const size = this.#sizes[n];
      const continues = n > 0 && e.batchLast !== undefined &&
        this.pending[n - 1].batchLast === e.batchLast;
      if (
        n > 0 && !continues &&
        (n >= s.maxRecordsPerMessage || bytes + size > s.maxBytesPerMessage)
      ) break;
      n++;
      bytes += size;
    }
    return n;
  }

  /** Publishes the next message, expecting this core's previous one, and waits for its ack. */
  async #publishOne(): Promise<void> {
    const n = this.#take();
    const run = this.pending.slice(0, n);
    const first = run[0].sequence;
    const last = run[n - 1].sequence;
    this.state = "shipping";
    this.#inflight = n;
    this.#inflightBytes = this.#sizes.slice(0, n).reduce((a, b) => a + b, 0);
    // What is left was read for the next message: its linger starts now.
    if (this.pending.length > n) this.#queuedSince = performance.now();
    let ack;
    try {
      ack = await this.#js.publish(this.subject, encodeFrame(run), {
        msgID: `${this.#s.node}.${this.coreId}.${first}-${last}`,
        expect: { lastSubjectSequence: this.lastStreamSequence },
        timeout: this.#s.publishTimeoutMs,
      });
    } finally {
      this.#inflight = 0;
      this.#inflightBytes = 0;
    }
    // A duplicate is this very message (its id names its sequences) stored by an earlier try.
    this.lastStreamSequence = ack.seq;
    this.lastShipped = last;
    const segment = this.#endSegment[n - 1];
    this.#shippedAt = segment < 0
      ? undefined
      : { segment, offset: this.#endOffset[n - 1], next: last + 1 };
    this.lastAckAt = Date.now();
    this.error = undefined;
    this.#drop(last);
    this.#shipped(last);
  }

  #shipped(last: number): void {
    this.#marked = Math.max(this.#marked, last);
    const r = this.#hooks.onShipped?.(this.coreId, last);
    if (r instanceof Promise) r.catch(() => {});
    this.#hooks.gapShipped?.(this.coreId, last);
    this.checkHold();
    void this.remeasure();
    this.#onProgress();
  }

  /**
   * The `holdAppends` call site of the unshipped limit (`ShipperHooks`): after each
   * acknowledgement, and on the shipper's timer (a server that is down acknowledges nothing).
   */
  checkHold(): void {
    const records = this.#hooks.unshippedLimitRecords;
    const bytes = this.#hooks.unshippedLimitBytes;
    if ((records === undefined && bytes === undefined) || this.#hooks.holdAppends === undefined) {
      return;
    }
    const held = (records !== undefined && this.unshippedRecords > records) ||
      (bytes !== undefined && this.unshippedBytes > bytes);
    if (held !== this.#held) {
      this.#held = held;
      this.#hooks.holdAppends(this.coreId, held);
    }
  }

  /** Releases this core's appends if the limit holds them (the shipper closes). */
  releaseHold(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#hooks.holdAppends?.(this.coreId, false);
  }

  async #closeReader(): Promise<void> {
    const r = this.#reader;
    this.#reader = undefined;
    this.#read = undefined;
    this.#carry = { entries: [] };
    this.#carryAt = 0;
    if (r === undefined) return;
    await r.cancel().catch(() => {});
  }

  /** Stops reading (the loop then ends at its next step), and waits for a measure in flight. */
  async stop(): Promise<void> {
    await this.#closeReader();
    await this.#measuring?.catch(() => {});
  }
}
