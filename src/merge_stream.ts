/**
 * The streaming k-way merge of every core's cursor by `(epoch, timestampNs, coreId, sequence)`.
 * Memory is bounded by the number of cores times two 1 MiB read buffers and 64 decoded
 * entries, not by the size of the log.
 *
 * @module
 */

import { PerCoreWalConfig } from "./config.ts";
import { CoreCursor, type PositionedEntry, type SegmentOffset } from "./merge.ts";
import type { PerCoreWalEntry } from "./types.ts";
import { optionalSafeInteger } from "./numbers.ts";
import { configFromDirectory } from "./wal_meta.ts";
import { checkOptionKeys } from "./option_keys.ts";
import { toPath } from "./path_arg.ts";

/**
 * Orders entries by `(epoch, timestampNs, coreId, sequence)`.
 *
 * @example
 * ```ts
 * import { compareEntries, type PerCoreWalEntry } from "@percore/wal";
 *
 * declare const entries: PerCoreWalEntry[];
 * entries.sort(compareEntries); // by (epoch, timestampNs, coreId, sequence)
 * ```
 */
export function compareEntries(a: PerCoreWalEntry, b: PerCoreWalEntry): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  if (a.timestampNs !== b.timestampNs) return a.timestampNs < b.timestampNs ? -1 : 1;
  if (a.coreId !== b.coreId) return a.coreId - b.coreId;
  return a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0;
}

/** A binary min-heap of cursors by their current entry. */
class CursorHeap {
  readonly #h: CoreCursor[] = [];

  get size(): number {
    return this.#h.length;
  }

  top(): CoreCursor {
    return this.#h[0];
  }

  push(c: CoreCursor): void {
    const h = this.#h;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (_less(h[p], h[i])) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  /** Restores the order after the top's entry changed; removes it if it is finished. */
  fixTop(): void {
    const h = this.#h;
    if (h[0].entry === undefined) {
      const last = h.pop()!;
      if (h.length === 0) return;
      h[0] = last;
    }
    let i = 0;
    const n = h.length;
    while (true) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && _less(h[r], h[l]) ? r : l;
      if (_less(h[i], h[m])) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}

function _less(a: CoreCursor, b: CoreCursor): boolean {
  return compareEntries(a.entry!, b.entry!) <= 0;
}

/**
 * Options of the streaming merge.
 *
 * @example
 * ```ts
 * import { type MergeOptions, mergeSegments } from "@percore/wal";
 *
 * const options: MergeOptions = { fromEpoch: 3, toEpoch: 5 };
 * for await (const entry of mergeSegments("./data/wal", options)) {
 *   console.log(entry.epoch, entry.coreId, entry.sequence);
 * }
 * ```
 */
export interface MergeOptions {
  /** Only entries of this epoch or later. */
  fromEpoch?: number;
  /** Only entries of this epoch or earlier. */
  toEpoch?: number;
}

/**
 * Merges cursors (one per core) into one stream ordered by `(epoch, timestampNs, coreId,
 * sequence)`; yields positioned entries. Closes the cursors.
 */
export async function* mergeCursors(cursors: CoreCursor[]): AsyncGenerator<PositionedEntry> {
  const heap = new CursorHeap();
  try {
    for (const c of cursors) if (c.entry !== undefined) heap.push(c);
    while (heap.size > 0) {
      const c = heap.top();
      yield c.current!;
      const p = c.advance();
      if (p !== undefined) await p;
      heap.fixTop();
    }
  } finally {
    for (const c of cursors) c.close();
  }
}

/**
 * Every entry of a WAL directory (a path, or a configuration), merged across cores by
 * `(epoch, timestampNs, coreId, sequence)`, streamed: memory stays bounded whatever the size
 * of the log. A torn tail ends its core; corruption throws `PerCoreWalError`. The number of
 * cores and the segment pattern of a path come from its `wal.json`.
 *
 * @example
 * ```ts ignore
 * import { mergeSegments } from "@percore/wal";
 *
 * for await (const entry of mergeSegments("./data/wal", { fromEpoch: 3 })) {
 *   console.log(entry.coreId, entry.sequence, entry.operation.type);
 * }
 * ```
 */
export function mergeSegments(
  dir: string | URL | PerCoreWalConfig,
  options: MergeOptions & { ends?: (SegmentOffset | undefined)[] } = {},
): AsyncGenerator<PerCoreWalEntry> {
  checkOptionKeys(options, "MergeOptions");
  optionalSafeInteger(options.fromEpoch, "fromEpoch");
  optionalSafeInteger(options.toEpoch, "toEpoch");
  return new _MergeStream(dir instanceof PerCoreWalConfig ? dir : toPath(dir, "dir"), options);
}

const _DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/**
 * The iterator of {@linkcode mergeSegments}, written out instead of an `async function*`: an
 * entry already decoded is handed out without the generator's extra await per `yield` (about
 * 60 ns of the ~500 ns an entry costs). It behaves as the generator did: nothing is opened
 * before the first `next()`; calls are served in order; an error or `return()` closes every
 * cursor and ends the stream.
 */
class _MergeStream implements AsyncGenerator<PerCoreWalEntry, undefined> {
  readonly #dir: string | PerCoreWalConfig;
  readonly #options: MergeOptions & { ends?: (SegmentOffset | undefined)[] };
  readonly #cursors: CoreCursor[] = [];
  readonly #heap = new CursorHeap();
  #started = false;
  #done = false;
  /** The top cursor's entry was handed out: advance it before the next one. */
  #advanceDue = false;
  /** The call being served asynchronously; later calls wait for it. */
  #busy: Promise<unknown> | undefined;

  constructor(
    dir: string | PerCoreWalConfig,
    options: MergeOptions & { ends?: (SegmentOffset | undefined)[] },
  ) {
    this.#dir = dir;
    this.#options = options;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<PerCoreWalEntry, undefined>> {
    if (this.#busy !== undefined) return this.#after(() => this.next());
    let r:
      | IteratorResult<PerCoreWalEntry, undefined>
      | Promise<
        IteratorResult<PerCoreWalEntry, undefined>
      >;
    try {
      r = this.#step();
    } catch (e) {
      return this.#end().then(() => Promise.reject(e));
    }
    if (!(r instanceof Promise)) return Promise.resolve(r);
    const p = r.then(
      (x) => (this.#busy = undefined, x),
      (e) => {
        this.#busy = undefined;
        return this.#end().then(() => Promise.reject(e));
      },
    );
    this.#busy = p;
    return p;
  }

  return(value?: undefined): Promise<IteratorResult<PerCoreWalEntry, undefined>> {
    if (this.#busy !== undefined) return this.#after(() => this.return(value));
    return this.#end().then(() => ({ value, done: true }));
  }

  throw(e: unknown): Promise<IteratorResult<PerCoreWalEntry, undefined>> {
    if (this.#busy !== undefined) return this.#after(() => this.throw(e));
    return this.#end().then(() => Promise.reject(e));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  #after<T>(f: () => Promise<T>): Promise<T> {
    return this.#busy!.then(f, f);
  }

  #step():
    | IteratorResult<PerCoreWalEntry, undefined>
    | Promise<IteratorResult<PerCoreWalEntry, undefined>> {
    if (this.#done) return _DONE;
    if (!this.#started) return this.#start();
    if (this.#advanceDue) {
      this.#advanceDue = false;
      const p = this.#heap.top().advance();
      if (p !== undefined) return p.then(() => (this.#heap.fixTop(), this.#top()));
      this.#heap.fixTop();
    }
    return this.#top();
  }

  async #start(): Promise<IteratorResult<PerCoreWalEntry, undefined>> {
    this.#started = true;
    const config = typeof this.#dir === "string" ? configFromDirectory(this.#dir) : this.#dir;
    const o = this.#options;
    for (let c = 0; c < config.numCores; c++) {
      this.#cursors.push(
        await CoreCursor.open(config, c, {
          fromEpoch: o.fromEpoch,
          toEpoch: o.toEpoch,
          end: o.ends?.[c],
          readAhead: true,
        }),
      );
    }
    for (const c of this.#cursors) if (c.entry !== undefined) this.#heap.push(c);
    return this.#top();
  }

  #top(): IteratorResult<PerCoreWalEntry, undefined> {
    if (this.#heap.size === 0) {
      // Every cursor is finished: their segments are closed.
      this.#done = true;
      return _DONE;
    }
    this.#advanceDue = true;
    return { value: this.#heap.top().entry!, done: false };
  }

  /** Ends the stream: closes every cursor, after its read in flight. */
  async #end(): Promise<void> {
    this.#done = true;
    await Promise.all(this.#cursors.map((c) => c.closeAsync()));
  }
}
