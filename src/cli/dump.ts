/**
 * `wal dump`: the entries of one segment file, or of a whole WAL directory merged across cores
 * by `(epoch, timestampNs, coreId, sequence)`, as text or JSON lines.
 *
 * @module
 */

import { PerCoreWalError } from "../errors.ts";
import { isMissing, statPath } from "../fs.ts";
import { mergeSegments } from "../merge_stream.ts";
import { PerCoreWalReader } from "../reader.ts";
import type { PerCoreWalEntry } from "../types.ts";
import { configFromDirectory, readWalMeta } from "../wal_meta.ts";
import { entryJson, entryText } from "./display.ts";
import { LineWriter } from "./output.ts";
import { dirname } from "./paths.ts";
import { UsageError } from "./usage.ts";
import { segmentDamageMessage } from "../segment_message.ts";

/** Which entries `dump` prints. */
export interface DumpOptions {
  /** One JSON object per line. */
  json: boolean;
  /** Only entries with this sequence or a later one (per core). */
  fromSequence?: number;
  /** Only entries of this epoch. */
  epoch?: number;
  /** Only entries of this core. */
  core?: number;
}

/** Writes one entry as a line of text or JSON. */
export function printEntry(out: LineWriter, e: PerCoreWalEntry, json: boolean): void {
  out.line(json ? entryJson(e) : entryText(e));
}

function _wanted(e: PerCoreWalEntry, o: DumpOptions): boolean {
  return (o.fromSequence === undefined || e.sequence >= o.fromSequence) &&
    (o.epoch === undefined || e.epoch === o.epoch) &&
    (o.core === undefined || e.coreId === o.core);
}

/** Refuses a `--core` that no core of the WAL has (it would print nothing and exit 0). */
function _checkCore(o: DumpOptions, numCores: number, what: string): void {
  if (o.core !== undefined && o.core >= numCores) {
    throw new UsageError(
      `--core ${o.core} is out of range: ${what} has ${numCores} core(s), 0..${numCores - 1}`,
    );
  }
}

/**
 * Dumps a segment file or a directory. Exit 1 (message on stderr naming file and offset) at
 * corruption; a torn tail ends the output with a note on stderr.
 */
export async function dump(path: string, o: DumpOptions): Promise<number> {
  using out = new LineWriter();
  return await _dump(path, o, out);
}

async function _dump(path: string, o: DumpOptions, out: LineWriter): Promise<number> {
  let info: Deno.FileInfo;
  try {
    info = statPath(path);
  } catch (e) {
    if (isMissing(e)) {
      throw new PerCoreWalError("SegmentNotFound", `"${path}" does not exist`, { segment: path });
    }
    throw e;
  }
  if (!info.isDirectory && !info.isFile) {
    // A FIFO or a device: opening it would block or read without end.
    throw new PerCoreWalError(
      "Unsafe",
      `"${path}" is neither a segment file nor a WAL directory (not a regular file)`,
      { segment: path },
    );
  }
  if (info.isDirectory) {
    const config = configFromDirectory(path);
    _checkCore(o, config.numCores, `the WAL "${path}"`);
    const range = o.epoch === undefined ? {} : { fromEpoch: o.epoch, toEpoch: o.epoch };
    for await (const e of mergeSegments(config, range)) {
      if (_wanted(e, o)) printEntry(out, e, o.json);
    }
    return 0;
  }
  const meta = readWalMeta(dirname(path));
  if (meta !== undefined) _checkCore(o, meta.numCores, `the WAL of "${path}"`);
  await using reader = await PerCoreWalReader.open(path, { maxRecordBytes: meta?.maxRecordBytes });
  const own = reader.header?.coreId;
  if (o.core !== undefined && own !== undefined && own !== o.core) {
    throw new UsageError(`--core ${o.core} selects nothing: "${path}" is a segment of core ${own}`);
  }
  while (true) {
    const batch = await reader.readBatch(4096);
    for (const r of batch) {
      if (r.kind === "entry") {
        if (_wanted(r.entry, o)) printEntry(out, r.entry, o.json);
      } else if (r.kind === "torn") {
        out.flush();
        console.error(
          `wal dump: "${path}" ends with a torn record at offset ${r.offset}: ${r.reason}`,
        );
        return 0;
      } else if (r.kind === "corrupted") {
        out.flush();
        throw new PerCoreWalError(
          r.code,
          segmentDamageMessage("read", path, r.reason, r.offset),
          { segment: path, offset: r.offset },
        );
      } else {
        return 0;
      }
    }
  }
}
