/**
 * `wal tail`: the last entries of every core, then (with `follow`) new entries as they are
 * written, across segment rotation, by polling. Takes no lock.
 *
 * Reading, durability and rotation are those of `watchWal` (`src/watch.ts`, one rule in one
 * place): the manager publishes its durable positions only in its own shared memory, so another
 * process cannot read them. A record that validates (whole, CRC and sequence checked) is printed
 * only after an fdatasync of its segment file, issued after reading it: a record that could be
 * read had its write completed, and an fdatasync of a file, from any process, makes every
 * completed write of it durable. It never prints a torn or damaged record, and waits at anything
 * that does not validate yet (a batch being written) instead of skipping it. A follower that
 * falls behind a segment a checkpoint retired fails with code `Retired`.
 *
 * @module
 */

import type { PerCoreWalConfig } from "../config.ts";
import { compareEntries } from "../merge_stream.ts";
import type { PerCoreWalEntry } from "../types.ts";
import { CoreFollower, pollingSource, sleep } from "../watch.ts";
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

/** Entries a follower reads at a time. */
const READ_ENTRIES = 4096;

/** Every entry `f` has now, keeping the last `limit` of them (all of them for Infinity). */
async function _readAll(f: CoreFollower, limit: number): Promise<PerCoreWalEntry[]> {
  let got: PerCoreWalEntry[] = [];
  while (true) {
    const more = await f.read(READ_ENTRIES);
    if (more.length === 0) return got;
    got.push(...more);
    if (got.length > 2 * limit + READ_ENTRIES) got = _last(got, limit);
  }
}

function _last<T>(a: T[], n: number): T[] {
  return n >= a.length ? a : n <= 0 ? [] : a.slice(a.length - n);
}

/** Prints the last `lines` entries of every core, then follows. Returns the exit code. */
export async function tail(config: PerCoreWalConfig, o: TailOptions): Promise<number> {
  using out = new LineWriter();
  const source = pollingSource(o.intervalMs);
  const followers: CoreFollower[] = [];
  const first: PerCoreWalEntry[] = [];
  for (let c = 0; c < config.numCores; c++) {
    const f = new CoreFollower(config, c, source);
    followers.push(f);
    first.push(..._last(await _readAll(f, o.lines), o.lines));
  }
  for (const e of first.sort(compareEntries)) printEntry(out, e, o.json);
  out.flush();
  const stop = o.signal ?? new AbortController().signal;
  while (o.follow && !stop.aborted) {
    try {
      await sleep(o.intervalMs, stop);
    } catch {
      break; // the signal ends following (SIGINT, SIGTERM)
    }
    const fresh: PerCoreWalEntry[] = [];
    for (const f of followers) fresh.push(...await _readAll(f, Infinity));
    for (const e of fresh.sort(compareEntries)) printEntry(out, e, o.json);
    out.flush();
  }
  return 0;
}
