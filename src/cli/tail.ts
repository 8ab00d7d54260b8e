/**
 * `wal tail`: the last entries of every core, then (with `follow`) new entries as they are
 * written, across segment rotation, by polling. Takes no lock.
 *
 * Durability: the manager publishes its durable positions only in its own shared memory, so
 * another process cannot read them. `tail` makes what it prints durable itself: it reads and
 * validates records (whole, CRC and sequence checked), then fdatasyncs their segment file, and
 * prints them only after that returned. A record that could be read had its write completed, and
 * an fdatasync of a file, from any process, makes every completed write of it durable. It never
 * prints a torn or damaged record, and waits at anything that does not validate yet (a batch
 * being written) instead of skipping it.
 *
 * @module
 */

import type { PerCoreWalConfig } from "../config.ts";
import { listCoreSegments } from "../segment_files.ts";
import { PerCoreWalError } from "../errors.ts";
import { syncFileData } from "../fs.ts";
import { SEGMENT_DATA_OFFSET } from "../format.ts";
import { compareEntries } from "../merge_stream.ts";
import { PerCoreWalReader } from "../reader.ts";
import type { PerCoreWalEntry } from "../types.ts";
import { printEntry } from "./dump.ts";
import { LineWriter } from "./output.ts";

/** Options of `tail`. */
export interface TailOptions {
  /** One JSON object per line. */
  json: boolean;
  /** Entries of each core to print first. */
  lines: number;
  /** Keep polling for new entries. */
  follow: boolean;
  /** Milliseconds between polls. */
  intervalMs: number;
  /** Stops following when aborted. */
  signal?: AbortSignal;
}

/** Where a core's tail is: the next record to read. */
interface _Position {
  segment: number;
  offset: number;
  sequence: number | undefined;
}

/**
 * Reads a core's entries from `pos` up to the first thing that does not validate, makes them
 * durable (fdatasync of their segment, after reading them), and hands the last `limit` of them to
 * `keep`. Moves `pos`.
 */
async function _readFrom(
  config: PerCoreWalConfig,
  coreId: number,
  pos: _Position | undefined,
  limit: number,
  keep: (e: PerCoreWalEntry) => void,
): Promise<_Position | undefined> {
  const segs = listCoreSegments(config, coreId);
  let p = pos;
  while (true) {
    if (p === undefined) {
      const first = segs[0];
      if (first === undefined) return undefined;
      p = { segment: first.index, offset: SEGMENT_DATA_OFFSET, sequence: undefined };
    }
    const cur: _Position = p;
    const seg = segs.find((s) => s.index === cur.segment);
    if (seg !== undefined) {
      let reader: PerCoreWalReader;
      try {
        reader = await PerCoreWalReader.open(seg.path, {
          maxRecordBytes: config.options.maxRecordBytes,
          startOffset: cur.offset,
          startSequence: cur.sequence,
        });
      } catch (e) {
        // A header being written, or a segment retired under us: try again at the next poll.
        if (e instanceof PerCoreWalError) return cur;
        throw e;
      }
      using r = reader;
      if (r.header === undefined) return cur;
      let got: PerCoreWalEntry[] = [];
      for (let done = false; !done;) {
        for (const x of await r.readBatch(4096)) {
          if (x.kind !== "entry") {
            done = true;
            break;
          }
          got.push(x.entry);
          cur.offset = x.offset + x.length;
          cur.sequence = x.entry.sequence + 1;
        }
        if (got.length > 2 * limit + 4096) got = _last(got, limit);
      }
      cur.sequence ??= r.header.firstSequence;
      if (got.length > 0 && limit > 0) {
        // The writer acknowledges a record only after its own fdatasync, and publishes that only
        // in its shared memory. Reading a record shows that its write completed; an fdatasync
        // of the file after that read makes it durable, whoever issues it. Only then print it.
        syncFileData(seg.path);
        for (const e of _last(got, limit)) keep(e);
      }
    }
    // Rotation: go on in the next segment only once this one is read to where it begins.
    const next = segs.find((s) => s.index > cur.segment);
    if (next === undefined) return cur;
    let first: number | undefined;
    try {
      using n = await PerCoreWalReader.open(next.path, {
        maxRecordBytes: config.options.maxRecordBytes,
      });
      first = n.header?.firstSequence;
    } catch (e) {
      if (!(e instanceof PerCoreWalError)) throw e;
    }
    if (first === undefined || (seg !== undefined && first !== cur.sequence)) return cur;
    p = { segment: next.index, offset: SEGMENT_DATA_OFFSET, sequence: undefined };
  }
}

function _last<T>(a: T[], n: number): T[] {
  return n >= a.length ? a : n <= 0 ? [] : a.slice(a.length - n);
}

/** Prints the last `lines` entries of every core, then follows. Returns the exit code. */
export async function tail(config: PerCoreWalConfig, o: TailOptions): Promise<number> {
  using out = new LineWriter();
  const positions: (_Position | undefined)[] = [];
  const first: PerCoreWalEntry[] = [];
  for (let c = 0; c < config.numCores; c++) {
    const last: PerCoreWalEntry[] = [];
    positions.push(
      await _readFrom(config, c, undefined, o.lines, (e) => {
        last.push(e);
        if (last.length > o.lines) last.shift();
      }),
    );
    first.push(...last);
  }
  for (const e of first.sort(compareEntries)) printEntry(out, e, o.json);
  out.flush();
  while (o.follow && !o.signal?.aborted) {
    await _sleep(o.intervalMs, o.signal);
    const fresh: PerCoreWalEntry[] = [];
    for (let c = 0; c < config.numCores; c++) {
      positions[c] = await _readFrom(config, c, positions[c], Infinity, (e) => fresh.push(e));
    }
    for (const e of fresh.sort(compareEntries)) printEntry(out, e, o.json);
    out.flush();
  }
  return 0;
}

function _sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}
