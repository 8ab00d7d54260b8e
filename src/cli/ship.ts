/**
 * `wal ship` and `wal ship-status`: a WAL directory shipped to NATS JetStream with the shipper of
 * `@percore/wal/ship`, and how far the stream is behind the WAL. `cli.ts` loads this module only
 * when one of these commands runs (a dynamic import), so that the other commands never load the
 * NATS client.
 *
 * @module
 */

import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { decodeFrame, type ShipStatus, shipToNats, type ShipToNatsOptions } from "../../ship.ts";
import { PerCoreWalError } from "../errors.ts";
import { ShipMarks } from "../ship_marks.ts";
import { walFilesEnd } from "../ship/shipper.ts";
import { configFromDirectory } from "../wal_meta.ts";
import { jsonLine } from "./display.ts";

/** What `wal ship` and `wal ship-status` were given. */
export interface ShipCommandOptions {
  /** The NATS server URL(s), comma-separated. */
  server: string;
  /** The JetStream stream. */
  stream: string;
  /** This node's id. */
  node: string;
  /** The subject prefix (default the shipper's, `wal`). */
  subject?: string;
  /** One JSON object per line. */
  json: boolean;
}

/** What `wal ship` was given besides the common options. */
export interface ShipRunOptions extends ShipCommandOptions {
  /** Ship what is durable now, wait for the acknowledgements, and return. */
  once: boolean;
  /** `--max-unshipped-bytes N --drop-oldest`: the limit, past which the oldest go. */
  maxUnshippedBytes?: number;
  /** Stops a run without `once` (SIGINT / SIGTERM in the tool). */
  signal?: AbortSignal;
}

function _servers(server: string): string[] {
  return server.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** The shipper's options for these command options. */
function _shipOptions(o: ShipRunOptions): ShipToNatsOptions {
  const options: ShipToNatsOptions = {
    servers: _servers(o.server),
    stream: o.stream,
    node: o.node,
  };
  if (o.subject !== undefined) options.subject = o.subject;
  if (o.maxUnshippedBytes !== undefined) {
    options.maxUnshippedBytes = o.maxUnshippedBytes;
    options.onUnshippedLimit = "dropOldest";
  }
  return options;
}

function _printStatus(status: ShipStatus, json: boolean): void {
  for (const c of status.cores) {
    if (json) {
      console.log(jsonLine({ kind: "core", ...c, connection: status.connection }));
      continue;
    }
    console.log(
      `core ${c.coreId} (${c.subject}): shipped up to ${c.lastShippedSequence} ` +
        `(stream sequence ${c.lastStreamSequence}), ${c.unshippedRecords} unshipped, ` +
        `${c.retries} retries, ${c.state}${c.error === undefined ? "" : `: ${c.error}`}`,
    );
  }
}

/**
 * `wal ship <dir>`: ships the WAL directory's durable entries (from what the stream last holds
 * for each core on). With `once`: resolves to 0 when everything durable at the start is
 * acknowledged. Without: ships until `signal`, then closes (0), or 1 when a core fails.
 */
export async function shipDirectory(path: string, o: ShipRunOptions): Promise<number> {
  configFromDirectory(path); // a WAL directory, or PerCoreWalError (exit 1) before connecting
  await using shipper = await shipToNats(path, _shipOptions(o));
  if (o.once) {
    await shipper.drained({ signal: o.signal });
    _printStatus(shipper.status(), o.json);
    return 0;
  }
  if (!o.json) console.error(`wal ship: shipping ${path} to ${o.server} (stream ${o.stream})`);
  // Runs until the signal; a failed core (its loop has stopped for good) ends the run with 1.
  // status() is cheap (drained() would rescan the newest segments each time).
  const signal = o.signal ?? new AbortController().signal;
  let code = 0;
  while (!signal.aborted) {
    const failed = shipper.status().cores.find((c) => c.state === "failed");
    if (failed !== undefined) {
      console.error(`wal ship: core ${failed.coreId} failed: ${failed.error ?? "unknown error"}`);
      code = 1;
      break;
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, 250);
      signal.addEventListener("abort", done, { once: true });
    });
  }
  await shipper.close();
  _printStatus(shipper.status(), o.json);
  return code;
}

/** One core's line of `wal ship-status`. */
export interface ShipLag {
  /** The core. */
  coreId: number;
  /** Its subject in the stream. */
  subject: string;
  /** The last sequence the stream holds for the core (0: none). */
  streamLastSequence: number;
  /** The stream sequence of that message (0: none). */
  streamSequence: number;
  /** The last sequence in the WAL's files. */
  walLastSequence: number;
  /** `walLastSequence - streamLastSequence`: the records not shipped yet. */
  lagRecords: number;
  /**
   * The durable mark of this shipper (`<stream>-<node>`) in the WAL's `shippers/` directory: the
   * last sequence checkpoints may retire past. Absent when the shipper is not registered
   * (`--no-retain`) or its file is invalid (`wal shippers` says why).
   */
  markSequence?: number;
  /**
   * Entries given up unshipped (`dropOldest`, or ranges the WAL or the stream lost) whose gap
   * marker the stream may not hold yet: the next shipper of this node declares it first.
   */
  pendingGap?: { fromSequence: number; toSequence: number };
}

/**
 * `wal ship-status <dir>`: per core, the last sequence the stream holds, the last sequence in
 * the WAL's files, and the difference. Reads the stream's last message of each core's subject;
 * changes nothing.
 */
export async function shipStatus(path: string, o: ShipCommandOptions): Promise<number> {
  const config = configFromDirectory(path);
  const walEnds = await walFilesEnd(config);
  const marks = ShipMarks.list(config).find((m) => m.name === `${o.stream}-${o.node}`);
  const trusted = marks === undefined || marks.invalid !== undefined ? undefined : marks;
  const prefix = o.subject ?? "wal";
  const nc = await connect({ servers: _servers(o.server) });
  const lags: ShipLag[] = [];
  try {
    const jsm = await jetstreamManager(nc);
    for (let c = 0; c < config.numCores; c++) {
      const subject = `${prefix}.${o.node}.${c}`;
      const m = await jsm.streams.getMessage(o.stream, { last_by_subj: subject });
      let last = 0;
      if (m !== null) {
        try {
          last = decodeFrame(m.data).lastSequence;
        } catch (e) {
          if (!(e instanceof PerCoreWalError)) throw e;
          throw new PerCoreWalError(
            e.code,
            `Stream ${o.stream}: message ${m.seq} on ${subject} does not decode: ${e.message}`,
            { cause: e },
          );
        }
      }
      const lag: ShipLag = {
        coreId: c,
        subject,
        streamLastSequence: last,
        streamSequence: m?.seq ?? 0,
        walLastSequence: walEnds[c],
        lagRecords: walEnds[c] - last,
      };
      if (trusted !== undefined) {
        lag.markSequence = trusted.shipped[c] ?? 0;
        const g = trusted.gaps.find((g) => g.coreId === c);
        if (g !== undefined) {
          lag.pendingGap = { fromSequence: g.fromSequence, toSequence: g.toSequence };
        }
      }
      lags.push(lag);
    }
  } finally {
    await nc.close().catch(() => {});
  }
  for (const l of lags) {
    if (o.json) console.log(jsonLine({ kind: "core", ...l }));
    else {
      const mark = l.markSequence === undefined ? "" : `, mark ${l.markSequence}`;
      const gap = l.pendingGap === undefined
        ? ""
        : `, entries ${l.pendingGap.fromSequence} to ${l.pendingGap.toSequence} given up ` +
          "(gap not yet declared in the stream)";
      console.log(
        `core ${l.coreId} (${l.subject}): stream holds up to ${l.streamLastSequence}, ` +
          `WAL up to ${l.walLastSequence}, lag ${l.lagRecords} records${mark}${gap}`,
      );
    }
  }
  return 0;
}
