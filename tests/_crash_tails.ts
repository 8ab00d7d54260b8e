// Hand-made WAL directories after a power loss, on real files (sync backend, core 0): batches in
// flight at the crash behind a hole of zeros (a crash tail), or a hole that a later batch marker
// proves acknowledged (corruption). Shared by the power-loss tests and the CLI tests.
import { CoreLog } from "../src/core_log.ts";
import type { PerCoreWalConfig } from "../src/config.ts";
import { BATCH_MARKER_BYTES } from "../src/format.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { smallConfig } from "./_helpers.ts";

/** A value of `n` bytes that differs per record. */
export const value = (i: number, n = 300): Uint8Array => new Uint8Array(n).fill(65 + (i % 26));

/** A record's place in its segment. */
export interface RecordPlace {
  /** Its offset. */
  offset: number;
  /** Its length, padding included. */
  length: number;
  /** Its sequence. */
  sequence: number;
}

/** Places of every record of a segment (read before damage). */
export async function places(path: string): Promise<RecordPlace[]> {
  const out: RecordPlace[] = [];
  using r = await PerCoreWalReader.open(path);
  for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
    out.push({ offset: x.offset, length: x.length, sequence: x.entry.sequence });
  }
  return out;
}

/** Overwrites `[from, to)` of a file with zeros: sectors a power loss never wrote. */
export function zero(path: string, from: number, to: number): void {
  using f = Deno.openSync(path, { write: true });
  f.seekSync(from, Deno.SeekMode.Start);
  f.writeSync(new Uint8Array(to - from));
}

/**
 * Batch A (records 1..3) acknowledged; batch B (4..6) submitted; batch C (7..9) submitted
 * after B was acknowledged (`proven`) or while B was still in flight. One segment.
 */
export async function threeBatches(
  dir: string,
  proven: boolean,
): Promise<{ config: PerCoreWalConfig; path: string; recs: RecordPlace[] }> {
  const config = smallConfig(dir, { backend: "sync" });
  const log = await CoreLog.open(config, 0);
  const put = (i: number) => log.appendPut(`k-${i}`, value(i));
  for (let i = 1; i <= 3; i++) put(i);
  await log.sync();
  for (let i = 4; i <= 6; i++) put(i);
  const b = log.sync();
  if (proven) await b;
  for (let i = 7; i <= 9; i++) put(i);
  await Promise.all([b, log.sync()]);
  await log.close();
  const path = config.segmentPath(0, 0);
  return { config, path, recs: await places(path) };
}

/**
 * {@linkcode threeBatches} with batch B (marker and records) lost as zeros: a crash tail when
 * C was in flight with B (`proven` false: records 1..3 survive), corruption when C's marker
 * claims B (`proven` true). `holeOffset` is where B began.
 */
export async function holeBeforeBatchC(
  dir: string,
  proven: boolean,
): Promise<{ config: PerCoreWalConfig; path: string; holeOffset: number }> {
  const { config, path, recs } = await threeBatches(dir, proven);
  const holeOffset = recs[3].offset - BATCH_MARKER_BYTES;
  zero(path, holeOffset, recs[6].offset - BATCH_MARKER_BYTES);
  return { config, path, holeOffset };
}

/**
 * A crash tail across a rotation: batch A (records 1..4) acknowledged; batch B fills segment 0
 * and is submitted at the rotation; batch C opens segment 1 while B is in flight, or after B was
 * acknowledged (`proven`). Then a sector inside record 6 (batch B, segment 0) is lost as zeros:
 * a crash tail beginning in segment 0 (records 1..5 survive, segment 1 is part of the tail), or
 * corruption when C's marker in segment 1 claims B. `holeOffset` is record 6's offset.
 *
 * With `lose: "batch"`, all of batch B is lost instead (segment 0 ends cleanly after record 4):
 * segment 1 starts past a hole, where the crash tail begins unless C's marker claims B.
 * `holeOffset` is then where B began.
 */
export async function tailAcrossRotation(
  dir: string,
  proven: boolean,
  lose: "sector" | "batch" = "sector",
): Promise<{ config: PerCoreWalConfig; path: string; holeOffset: number; last: number }> {
  const config = smallConfig(dir, { backend: "sync", segmentSizeBytes: 16 * 1024 });
  const log = await CoreLog.open(config, 0);
  let i = 0;
  for (; i < 4; i++) log.appendPut(`k-${i + 1}`, value(i, 1000));
  await log.sync();
  let b: Promise<void> | undefined;
  while (log.position.segment === 0) {
    log.appendPut(`k-${++i}`, value(i, 1000));
    if (log.position.segment === 0) continue;
    b = log.sync();
  }
  if (proven) await b;
  log.appendPut(`k-${++i}`, value(i, 1000));
  await log.sync();
  await log.close();
  const path = config.segmentPath(0, 0);
  const recs = await places(path);
  if (lose === "batch") {
    const holeOffset = recs[4].offset - BATCH_MARKER_BYTES;
    zero(path, holeOffset, config.options.segmentSizeBytes);
    return { config, path, holeOffset, last: i };
  }
  const victim = recs[5];
  const sector = Math.ceil(victim.offset / 512) * 512;
  zero(path, sector, sector + 512);
  return { config, path, holeOffset: victim.offset, last: i };
}
