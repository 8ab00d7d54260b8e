/**
 * Following a WAL directory live: each core's durable entries, in sequence order, each once,
 * across segment rotations, read from the segment files (pull-based: nothing is buffered in the
 * WAL for a reader). How far is durable comes from a {@linkcode DurableSource}: the manager of
 * this process (its published durable positions, woken by its durable notifications), or, for
 * another process, the files themselves (a record that validates is made durable by an
 * fdatasync of its segment before it is handed out, as `wal tail --follow` always did).
 *
 * Read side: never loads the writer engine or the io_uring binding.
 *
 * @module
 */

import { PerCoreWalConfig } from "./config.ts";
import { PerCoreWalError } from "./errors.ts";
import { SEGMENT_DATA_OFFSET } from "./format.ts";
import { syncFileData } from "./fs.ts";
import type { SegmentOffset } from "./merge.ts";
import { PerCoreWalReader } from "./reader.ts";
import { headerFirstSequence } from "./segment_probes.ts";
import { listCoreSegments } from "./segment_files.ts";
import type { PerCoreWalEntry } from "./types.ts";
import { configFromDirectory } from "./wal_meta.ts";
import { checkOptionKeys } from "./option_keys.ts";

/**
 * Options of `PerCoreWalManager.watch()` and {@linkcode watchWal}.
 *
 * @example
 * ```ts
 * import type { WatchOptions } from "@percore/wal";
 *
 * // Core 0 from sequence 120 on, core 1 from its first; stop after 10 s.
 * const options: WatchOptions = { from: { 0: 120, 1: 1 }, signal: AbortSignal.timeout(10_000) };
 * ```
 */
export interface WatchOptions {
  /** Only this core. Default: every core. */
  coreId?: number;
  /**
   * The first sequence to deliver, per core id (`{ 0: 120, 1: 1 }`): resume exactly after the
   * last sequence handled. A core not named starts at the start of its retained log (what no
   * checkpoint retired yet).
   */
  from?: Record<number, number>;
  /** Ends the stream: it errors with the signal's reason (a reader's `read()` rejects with it). */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode watchWal}.
 *
 * @example
 * ```ts
 * import type { WatchWalOptions } from "@percore/wal";
 *
 * const options: WatchWalOptions = { coreId: 0, intervalMs: 50 };
 * ```
 */
export interface WatchWalOptions extends WatchOptions {
  /** Milliseconds between looks at the files when nothing new was found. Default 100. */
  intervalMs?: number;
}

/**
 * How far each core's log is durable, and how to wait for that to move: the manager of this
 * process (`src/watch_live.ts`), or polling the files of another process's WAL
 * ({@linkcode pollingSource}).
 */
export interface DurableSource {
  /**
   * The durable end of core `coreId` (nothing at or beyond it is read), with the sequence of
   * the last durable record; or undefined when unknown: then what validates is made durable by
   * an fdatasync of its segment before it is handed out. Asked on every read of a core, also
   * before the core has a segment.
   */
  end(coreId: number): (SegmentOffset & { sequence: number }) | undefined;
  /**
   * Whether core `coreId`'s durable end will never move again: `true` (closed), its failure,
   * or undefined (still going). Asked before `end`, so that an end read after it is final.
   */
  stopped(coreId: number): true | Error | undefined;
  /**
   * Resolves when a durable end may have moved (or after a while); rejects with the signal's
   * reason when it is aborted, releasing its timers.
   */
  wait(signal: AbortSignal): Promise<void>;
}

/**
 * Where each entry a follower read ends in the log, in step with its entries: the segment index
 * and the offset after its record (for an atomic batch's entries but its last, the offset where
 * the record starts: a batch is one record).
 */
export interface EntryEnds {
  segment: number[];
  offset: number[];
}

/** Where a follower is: the next record to read and its sequence. */
interface _Position {
  segment: number;
  offset: number;
  next: number;
}

/**
 * Follows one core's log: {@linkcode read} returns the durable entries available now, in
 * sequence order, each once, from where the last call ended. Holds no file between calls.
 */
export class CoreFollower {
  /** The core. */
  readonly coreId: number;
  readonly #config: PerCoreWalConfig;
  readonly #source: DurableSource;
  readonly #from: number | undefined;
  #pos: _Position | undefined;

  /** A follower of core `coreId` from sequence `from` (default: its oldest retained entry). */
  constructor(config: PerCoreWalConfig, coreId: number, source: DurableSource, from?: number) {
    this.coreId = coreId;
    this.#config = config;
    this.#source = source;
    this.#from = from;
  }

  /** The sequence of the next entry to deliver, once the follower found where to start. */
  get nextSequence(): number | undefined {
    const p = this.#pos;
    if (p === undefined) return undefined;
    return this.#from !== undefined && this.#from > p.next ? this.#from : p.next;
  }

  /**
   * Up to `max` entries made durable since the last call (and records of about `maxBytes` at
   * most, but at least one entry), or none. Throws `PerCoreWalError`
   * with code `Retired` when a checkpoint retired the segment it was to read next, and at
   * damage within the durable part of the log (a source with known ends).
   */
  async read(max: number, maxBytes = Infinity, ends?: EntryEnds): Promise<PerCoreWalEntry[]> {
    const out: PerCoreWalEntry[] = [];
    const budget = { bytes: maxBytes };
    while (out.length < max && budget.bytes > 0) {
      // The end is asked first, also while the core has no segment yet: the source's `wait`
      // then knows this core's durable sequence and wakes when it moves (the manager's waits
      // only on the cores asked), not after its timer. An end older than the position found
      // below only makes this call read less.
      const end = this.#source.end(this.coreId);
      this.#pos ??= await this.#locate();
      const pos = this.#pos;
      if (pos === undefined) return out;
      if (end !== undefined && pos.segment > end.segment) return out;
      const segs = listCoreSegments(this.#config, this.coreId);
      const seg = segs.find((s) => s.index === pos.segment);
      if (seg === undefined) {
        if (!await this.#passRetired(segs, pos)) return out;
        continue;
      }
      const atEnd = end !== undefined && pos.segment === end.segment;
      const limit = atEnd ? end.offset : undefined;
      const r = await this.#readSegment(seg.path, pos, limit, end, max - out.length, budget, ends);
      if (r === "gone") continue;
      out.push(...r.entries);
      if (out.length >= max || budget.bytes <= 0 || r.stop === "wait" || atEnd) return out;
      // The segment is read to its end: go on in the next one once it continues this one.
      const next = segs.find((s) => s.index > pos.segment);
      const first = next === undefined
        ? undefined
        : await headerFirstSequence(next.path, this.#config.options.maxRecordBytes);
      if (next === undefined || first === undefined) return out;
      if (first !== pos.next) {
        if (end === undefined) return out; // a header being rewritten: look again later
        throw new PerCoreWalError(
          "Corrupted",
          `Core ${this.coreId}: segment "${next.path}" starts at sequence ${first}, but the ` +
            `previous segment ends before sequence ${pos.next}`,
          { coreId: this.coreId, segment: next.path },
        );
      }
      this.#pos = { segment: next.index, offset: SEGMENT_DATA_OFFSET, next: first };
    }
    return out;
  }

  /**
   * Reads one segment from `pos` (moving it) up to `limit`. "wait": it stopped at something
   * that does not validate yet (files of another process); "end": its records are read.
   */
  async #readSegment(
    path: string,
    pos: _Position,
    limit: number | undefined,
    end: { sequence: number } | undefined,
    max: number,
    budget: { bytes: number },
    ends: EntryEnds | undefined,
  ): Promise<"gone" | { entries: PerCoreWalEntry[]; stop: "wait" | "end" | "more" }> {
    let reader: PerCoreWalReader;
    try {
      reader = await PerCoreWalReader.open(path, {
        maxRecordBytes: this.#config.options.maxRecordBytes,
        startOffset: pos.offset,
        startSequence: pos.next,
        limitOffset: limit,
        // Another process's segment, being written: read to where its records end so far.
        liveEnd: end === undefined,
      });
    } catch (e) {
      if (!(e instanceof PerCoreWalError)) throw e;
      // Retired under us: the caller looks at the segments again.
      if (!listCoreSegments(this.#config, this.coreId).some((s) => s.index === pos.segment)) {
        return "gone";
      }
      // Another process's header being written: look again later.
      if (end === undefined) return { entries: [], stop: "wait" };
      throw e;
    }
    using r = reader;
    if (r.header === undefined) {
      if (end === undefined) return { entries: [], stop: "wait" };
      throw new PerCoreWalError(
        "Corrupted",
        `Segment "${path}" has no header below its durable end`,
        {
          coreId: this.coreId,
          segment: path,
        },
      );
    }
    const entries: PerCoreWalEntry[] = [];
    let read = 0;
    let stop: "wait" | "end" | "more" = "more";
    while (stop === "more" && entries.length < max && budget.bytes > 0) {
      for (const x of await r.readBatch(Math.min(1024, max - entries.length + 1))) {
        if (x.kind !== "entry") {
          if (end !== undefined && x.kind !== "end") {
            throw new PerCoreWalError(
              x.kind === "torn" ? "TornWrite" : x.code,
              `Cannot watch segment "${path}": ${x.reason} at offset ${x.offset}`,
              { coreId: this.coreId, segment: path, offset: x.offset },
            );
          }
          stop = end === undefined ? "wait" : "end";
          break;
        }
        const e = x.entry;
        // Never beyond the durable end: the limit offset ensures it, this says so.
        if (end !== undefined && e.sequence > end.sequence) {
          stop = "wait";
          break;
        }
        if (e.sequence !== pos.next) {
          throw new PerCoreWalError(
            "Corrupted",
            `Segment "${path}": sequence ${e.sequence} at offset ${x.offset} where ${pos.next} ` +
              `was expected`,
            { coreId: this.coreId, segment: path, offset: x.offset },
          );
        }
        read++;
        pos.offset = x.offset + x.length;
        pos.next = e.sequence + 1;
        if (this.#from === undefined || e.sequence >= this.#from) {
          entries.push(e);
          budget.bytes -= x.length;
          if (ends !== undefined) {
            ends.segment.push(pos.segment);
            ends.offset.push(pos.offset);
          }
        }
        if (entries.length >= max || budget.bytes <= 0) break;
      }
    }
    // Another process's records: durable once this fdatasync (after reading them) returned. A
    // record that could be read had its write completed, and an fdatasync from any process makes
    // every completed write of the file durable.
    if (end === undefined && read > 0) syncFileData(path);
    // A reader of another process's files waits at the end of every segment: the next one may
    // not be written yet; rotation is decided by the caller from the next segment's header.
    return { entries, stop: end === undefined && stop === "wait" ? "end" : stop };
  }

  /**
   * The segment where the follower starts: undefined while the core's oldest segment has no
   * header. Only the oldest is looked at for the start of the log: a later segment with a header
   * never means that an older one without is skipped. Prepared segments wait, headerless, after
   * the current one; the oldest has none yet while the core's first batch is being written, and
   * then the next (prepared ahead) may get its header before this looks at it (a follower that
   * started there lost the first segment's entries). Recovery refuses a headerless segment
   * before a started one, so this waits only for a header being written.
   */
  async #locate(): Promise<_Position | undefined> {
    const segs = listCoreSegments(this.#config, this.coreId);
    if (segs.length === 0) return undefined;
    const firstOfOldest = await headerFirstSequence(
      segs[0].path,
      this.#config.options.maxRecordBytes,
    );
    if (firstOfOldest === undefined) return undefined;
    const oldest = { ...segs[0], first: firstOfOldest };
    const from = this.#from;
    if (from === undefined) {
      return { segment: oldest.index, offset: SEGMENT_DATA_OFFSET, next: oldest.first };
    }
    if (oldest.first > from) throw this.#retired(from, oldest.path, oldest.first);
    for (let i = segs.length - 1; i >= 0; i--) {
      const first = await headerFirstSequence(segs[i].path, this.#config.options.maxRecordBytes);
      if (first !== undefined && first <= from) {
        return { segment: segs[i].index, offset: SEGMENT_DATA_OFFSET, next: first };
      }
    }
    return { segment: oldest.index, offset: SEGMENT_DATA_OFFSET, next: oldest.first };
  }

  /**
   * The segment at `pos` is gone: go on in the next one if it continues (true), else `Retired`;
   * false while the next one has no header yet (it is being started: look again later).
   */
  async #passRetired(segs: { index: number; path: string }[], pos: _Position): Promise<boolean> {
    for (const s of segs) {
      if (s.index < pos.segment) continue;
      const first = await headerFirstSequence(s.path, this.#config.options.maxRecordBytes);
      if (first === undefined) return false;
      const want = this.#from !== undefined && this.#from > pos.next ? this.#from : pos.next;
      if (first > want) throw this.#retired(want, s.path, first);
      if (first < pos.next) {
        throw new PerCoreWalError(
          "Corrupted",
          `Core ${this.coreId}: segment "${s.path}" starts at sequence ${first}, before ` +
            `sequence ${pos.next} that the follower reached in a segment now gone`,
          { coreId: this.coreId, segment: s.path },
        );
      }
      this.#pos = { segment: s.index, offset: SEGMENT_DATA_OFFSET, next: first };
      return true;
    }
    throw this.#retired(pos.next, undefined, undefined);
  }

  #retired(sequence: number, path: string | undefined, first: number | undefined) {
    const oldest = path === undefined
      ? "no segment is left"
      : `the oldest segment left, "${path}", starts at sequence ${first}`;
    return new PerCoreWalError(
      "Retired",
      `Core ${this.coreId}: cannot read from sequence ${sequence}: a checkpoint retired the ` +
        `segments holding it (${oldest}); start again from a checkpoint's state`,
      { coreId: this.coreId, segment: path },
    );
  }
}

/**
 * Entries a stream reads per pull, shared by its cores (what one pull adds to the stream's
 * queue), the least one core reads, and the most bytes of records read from one core per pull
 * (at least one entry). Each read of a core reopens its segment (and, for another process's
 * files, fdatasyncs it): a stream of one core reads up to 4096 small entries at a time, a
 * stream of many cores at least 256 from each, never more than 1 MiB of records from one core.
 */
const PULL_ENTRIES = 4096;
const PULL_ENTRIES_MIN = 256;
const PULL_BYTES = 1024 * 1024;

/** Checks watch options against a WAL of `numCores` cores; returns the cores to follow. */
export function watchedCores(numCores: number, options: WatchOptions): number[] {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`watch options must be an object, got ${String(options)}`);
  }
  const { coreId, from, signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("signal must be an AbortSignal");
  }
  if (coreId !== undefined) _checkCore(numCores, coreId, "coreId");
  if (from !== undefined) {
    if (from === null || typeof from !== "object") {
      throw new TypeError(`from must be an object of sequences by core id, got ${String(from)}`);
    }
    for (const [k, v] of Object.entries(from)) {
      _checkCore(numCores, Number(k), `from's key "${k}"`);
      if (typeof v !== "number") {
        throw new TypeError(`from[${k}] must be a number, got ${typeof v}`);
      }
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`from[${k}] must be a safe integer of at least 1, got ${v}`);
      }
    }
  }
  return coreId === undefined ? Array.from({ length: numCores }, (_, i) => i) : [coreId];
}

function _checkCore(numCores: number, coreId: number, what: string): void {
  if (typeof coreId !== "number") throw new TypeError(`${what} must be a number`);
  if (!Number.isInteger(coreId) || coreId < 0 || coreId >= numCores) {
    throw new PerCoreWalError(
      "InvalidCoreId",
      `${what}: core id ${coreId} is out of range: this WAL has cores 0 to ${numCores - 1}`,
      { coreId: Number.isInteger(coreId) ? coreId : undefined },
    );
  }
}

/**
 * A stream of the durable entries of `config`'s WAL as `source` says they become durable. Each
 * core's entries come in sequence order, each once; across cores, in the order they were read
 * (each pull reads every watched core in turn), not merged: use `coreId` and `sequence`. Ends
 * when every watched core stopped and was read to its end; errors with a core's failure, a
 * `Retired` or damage error, or the signal's reason. Cancelling it releases its timers.
 */
export function watchEntries(
  config: PerCoreWalConfig,
  source: DurableSource,
  options: WatchOptions = {},
): ReadableStream<PerCoreWalEntry> {
  return _watchStream(config, source, options, false, (controller, entries) => {
    for (const e of entries) controller.enqueue(e);
  });
}

/** A chunk of {@linkcode watchEntryBatches}: entries of one core, with where each ends. */
export interface EntryBatch {
  entries: PerCoreWalEntry[];
  /** Where each entry ends in the log; undefined when not known (a source of single entries). */
  ends?: EntryEnds;
}

/**
 * {@linkcode watchEntries} in arrays: each chunk is the entries of one core read at once (at
 * least one), with where each ends in the log. One read of the stream per array instead of per
 * entry: for followers of high rates (the shipper), where a read per entry costs more than the
 * entry.
 */
export function watchEntryBatches(
  config: PerCoreWalConfig,
  source: DurableSource,
  options: WatchOptions = {},
): ReadableStream<EntryBatch> {
  return _watchStream(config, source, options, true, (controller, entries, ends) => {
    if (entries.length > 0) controller.enqueue({ entries, ends });
  });
}

function _watchStream<T>(
  config: PerCoreWalConfig,
  source: DurableSource,
  options: WatchOptions,
  withEnds: boolean,
  deliver: (
    controller: ReadableStreamDefaultController<T>,
    entries: PerCoreWalEntry[],
    ends: EntryEnds | undefined,
  ) => void,
): ReadableStream<T> {
  const cores = watchedCores(config.numCores, options);
  const followers = cores.map((c) => new CoreFollower(config, c, source, options.from?.[c]));
  const perPull = Math.max(PULL_ENTRIES_MIN, Math.floor(PULL_ENTRIES / followers.length));
  const done = followers.map(() => false);
  const stop = new AbortController();
  const signal = options.signal;
  let inflight: Promise<void> | undefined;
  let onAbort: (() => void) | undefined;
  const release = () => {
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    onAbort = undefined;
    if (!stop.signal.aborted) stop.abort();
  };

  async function fill(controller: ReadableStreamDefaultController<T>) {
    while (true) {
      stop.signal.throwIfAborted();
      let got = 0;
      for (let i = 0; i < followers.length; i++) {
        if (done[i]) continue;
        const stopped = source.stopped(followers[i].coreId);
        const ends = withEnds ? { segment: [], offset: [] } : undefined;
        const entries = await followers[i].read(perPull, PULL_BYTES, ends);
        stop.signal.throwIfAborted();
        deliver(controller, entries, ends);
        got += entries.length;
        if (entries.length === 0 && stopped !== undefined) {
          if (stopped !== true) throw stopped;
          done[i] = true;
        }
      }
      if (got > 0) return;
      if (done.every((d) => d)) {
        release();
        controller.close();
        return;
      }
      await source.wait(stop.signal);
    }
  }

  return new ReadableStream<T>({
    start(controller) {
      if (signal === undefined) return;
      onAbort = () => {
        controller.error(signal.reason);
        release();
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    },
    pull(controller) {
      inflight = fill(controller).catch((e) => {
        // After an abort or a cancel the stream is no longer readable: this does nothing.
        controller.error(e);
        release();
      });
      return inflight;
    },
    async cancel() {
      release();
      // A read in flight finishes (and closes its file) before the cancel resolves.
      await inflight;
    },
  }, { highWaterMark: 1 });
}

/** A batched watch of one WAL: {@linkcode watchEntryBatches} with the owner's durable source. */
export type BatchWatch = (options: WatchOptions) => ReadableStream<EntryBatch>;

const _batchWatches = new WeakMap<object, BatchWatch>();

/**
 * Registers the batched watch of `owner` (a manager registers its own at open): internal, so that
 * the shipper reads a manager's entries in arrays without a public method for it.
 */
export function registerBatchWatch(owner: object, watch: BatchWatch): void {
  _batchWatches.set(owner, watch);
}

/** The batched watch `owner` registered, if any. */
export function batchWatchOf(owner: object): BatchWatch | undefined {
  return _batchWatches.get(owner);
}

/**
 * The durable entries of a WAL directory that another process writes, live: as
 * {@linkcode WatchOptions} says, each core's entries in sequence order, each once, across
 * segment rotations. Takes no lock. Durability is decided as `wal tail --follow` does: a
 * record that validates is handed out only after an fdatasync of its segment, issued after
 * reading it; the files are looked at every `intervalMs` while nothing new is found. The stream
 * never ends by itself: end it with the signal or by cancelling it. In the process that writes
 * the WAL, use `PerCoreWalManager.watch()`, which follows the manager's durable positions.
 *
 * @example
 * ```ts ignore
 * import { watchWal } from "@percore/wal";
 *
 * const signal = AbortSignal.timeout(5_000);
 * try {
 *   for await (const entry of watchWal("./data/wal", { from: { 0: 1 }, signal })) {
 *     console.log(entry.coreId, entry.sequence, entry.operation.type);
 *   }
 * } catch (e) {
 *   if (!signal.aborted) throw e;
 * }
 * ```
 */
export function watchWal(
  dir: string | URL | PerCoreWalConfig,
  options: WatchWalOptions = {},
): ReadableStream<PerCoreWalEntry> {
  const { config, source } = _polled(dir, options);
  return watchEntries(config, source, options);
}

/** {@linkcode watchWal} in arrays ({@linkcode watchEntryBatches}): the shipper's reads. */
export function watchWalBatches(
  dir: string | URL | PerCoreWalConfig,
  options: WatchWalOptions = {},
): ReadableStream<EntryBatch> {
  const { config, source } = _polled(dir, options);
  return watchEntryBatches(config, source, options);
}

function _polled(
  dir: string | URL | PerCoreWalConfig,
  options: WatchWalOptions,
): { config: PerCoreWalConfig; source: DurableSource } {
  checkOptionKeys(options, "WatchWalOptions");
  const config = dir instanceof PerCoreWalConfig ? dir : configFromDirectory(dir);
  const intervalMs = options.intervalMs ?? 100;
  if (typeof intervalMs !== "number" || !(intervalMs >= 1 && intervalMs <= 3_600_000)) {
    throw new RangeError(`intervalMs must be between 1 and 3600000, got ${String(intervalMs)}`);
  }
  return { config, source: pollingSource(intervalMs) };
}

/** The source of another process's WAL: ends unknown (fdatasync decides), polled. */
export function pollingSource(intervalMs: number): DurableSource {
  return {
    end: () => undefined,
    stopped: () => undefined,
    wait: (signal) => sleep(intervalMs, signal),
  };
}

/** Resolves after `ms`; rejects with the signal's reason when aborted (clearing its timer). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    function abort() {
      clearTimeout(t);
      reject(signal.reason);
    }
    signal.addEventListener("abort", abort, { once: true });
  });
}
