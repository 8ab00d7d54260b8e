/**
 * Edge-ingestion server: HTTP in, durable per-core WAL out.
 *
 * ```sh
 * deno task server --dir ./data/ingest --port 8080
 * # or: deno run --allow-read --allow-write --allow-ffi --allow-env --allow-net \
 * #       examples/ingest_server.ts --dir ./data/ingest --port 8080 --cores 2 --workers 2
 * curl -sS --data-binary $'{"key":"user:1","value":{"clicks":3}}\n' \
 *      -H 'content-type: application/x-ndjson' http://127.0.0.1:8080/events
 * ```
 *
 * The main thread recovers the WAL directory (newest checkpoint plus WAL replay; a torn tail is
 * cut), opens a {@linkcode PerCoreWalManager} (one Worker and one io_uring ring per core), and
 * starts `--workers` HTTP Workers (`_ingest_worker.ts`) that all listen on the same port with
 * `reusePort`; the kernel spreads connections over them. Each HTTP Worker has its own writer
 * handle for every core.
 *
 * ## Endpoints
 *
 * - `POST /events`: a batch of events. Each event goes to core `fnv1a32(key) % cores`. The
 *   answer is 200 only once every event of the request is durable on its core (`waitDurable` of
 *   the last sequence per core touched, which follows an fdatasync):
 *   `{"count": 3, "sequences": {"0": [17, 18], "1": [9]}}` (per core, the sequence of each
 *   event, in request order).
 *   - 400 `{"error": "MalformedEvent", "message": "line 2: \"key\" is missing"}` for malformed
 *     input (bad JSON, not an object, missing/empty/non-string key, missing value, unknown
 *     field, bad UTF-8, a truncated binary event, no events);
 *   - 413 for a body over `--max-body-bytes`, one event over `--max-record-bytes`, or a
 *     request whose events for one core make a batch over it;
 *   - 415 for another `Content-Type`; 405 (with `Allow`) for another method; 404 elsewhere;
 *   - 503 with `Retry-After: 1` when a core's shared buffer stays full for
 *     `--backpressure-wait-ms` (the WAL's Worker is behind the disk);
 *   - 500 if a core failed (an fdatasync error: that core refuses appends from then on).
 *
 *   Every body is validated whole before anything is appended, so a 400/413/415 leaves nothing
 *   in the WAL. The server waits until every core the request touches has room, then appends
 *   the request's events for each core as one atomic batch (`appendBatch`: one record), all in
 *   one turn of the event loop: a 503 leaves nothing in the WAL either. After a 500 (a core
 *   failed) or a crash, each core holds all of the request's events for it or none; they are
 *   not acknowledged, but recovery replays them if they reached the disk. (Cores are independent
 *   logs, each with its own fdatasync: a crash can keep a request's share on one core and not on
 *   another.) A request's share of a core must fit one record (`--max-record-bytes`): 413
 *   `RequestTooLarge` otherwise. Events are `put`s by key, so a client retrying the same request
 *   writes the same values again.
 * - `GET /metrics`: Prometheus text format: per-core appends, bytes, batches, fdatasyncs,
 *   fdatasync latency histogram (`percore_wal_fdatasync_latency_seconds_bucket{core,le}`,
 *   `_sum`, `_count`, from `manager.metrics()`), queue depth, pending bytes. The
 *   batches are counted when submitted and published at once, the histogram counts them
 *   when durable and is published at most every 20 ms: in one scrape under load its `_count` is
 *   below `percore_wal_batches_total` by the batches in flight and those completed in the
 *   last 20 ms; at rest the two are equal. Only batches written as writes and an fdatasync count
 *   in `percore_wal_fdatasyncs_total` (those of at most 128 KiB in direct write mode are written
 *   with durable writes instead, and in dsync write mode none has one);
 *   `percore_wal_backend_info{backend="io_uring",...} 1`; HTTP responses by code
 *   (`ingest_http_responses_total{code}`: to `POST /events` and to unknown paths only; the
 *   responses to `/metrics` and `/checkpoint` are `ingest_http_admin_responses_total{route,code}`,
 *   so a scrape never moves the ingestion counters);
 *   and a histogram of the acknowledgement latency (`ingest_ack_latency_seconds_bucket{le=...}`).
 * - `POST /checkpoint`: takes a checkpoint with {@linkcode CheckpointCoordinator} (merges the
 *   cores' segments by epoch into a state file, retires covered segments) and answers its id,
 *   epoch and counts.
 *
 * ## Formats
 *
 * NDJSON (`Content-Type: application/x-ndjson`, also `application/json`, `text/plain` or none):
 * one object per line, `{"key": "<string, 1 to 65535 UTF-8 bytes>", "value": <any JSON>}`; the
 * value is stored as its JSON text (`JSON.stringify` of the parsed value); blank lines are skipped.
 *
 * Binary (`Content-Type: application/octet-stream`): the 4 bytes `PWB1`, then events back to
 * back, each `u16 keyLength` (little-endian, 1..65535), `u32 valueLength` (little-endian), the
 * key bytes, the value bytes (stored as they are). The body ends exactly after an event.
 *
 * ## Flags
 *
 * `--dir` (default `./data/ingest`; the WAL is `<dir>/wal`, checkpoints `<dir>/checkpoints`),
 * `--hostname` (default `127.0.0.1`), `--port` (default 8080; 0 picks a free one),
 * `--cores` (default: the existing WAL's, else the CPU count), `--workers` (HTTP Workers,
 * default `--cores`), `--backend` (`auto`, `io_uring`, `sync`), `--max-body-bytes` (default
 * 1 MiB), `--max-record-bytes`, `--shared-buffer-bytes`, `--max-pending-bytes` (WAL options),
 * `--backpressure-wait-ms` (default 100). `--ship-to URL` ships the WAL to NATS JetStream as it
 * becomes durable (`@percore/wal/ship`, docs/SHIPPING.md), with `--ship-stream` (default `WAL`),
 * `--ship-node` (default `ingest`), `--ship-subject` (default `wal`) and
 * `--ship-max-unshipped-records`, `--ship-max-unshipped-bytes`; `/metrics` then gains the `percore_wal_ship_*` lines per core.
 *
 * With `reusePort`, a second server of the same user started on the same port shares it (the
 * kernel spreads connections over both) instead of failing with "address in use": give each
 * server its own port. A second server on the same `--dir` is refused (the WAL's lock).
 *
 * It prints `Listening on http://<host>:<port>/` once every HTTP Worker listens. SIGINT or
 * SIGTERM drains: requests in progress finish (their events become durable and are answered),
 * new ones get 503 `ShuttingDown` with `Retry-After: 1` meanwhile. The drain is bounded: 10 s
 * after the signal, a request still receiving its body (a slow or stalled upload) is answered
 * 503 `ShuttingDown` with nothing of it appended (a body is parsed only once whole), and the
 * listeners get 1 s more to close their connections; then the WAL closes and the process exits,
 * about 11 s after the signal at most (plus the WAL's close).
 *
 * @module
 */

import {
  type BackendChoice,
  CheckpointCoordinator,
  configFromDirectory,
  PerCoreRecoveryManager,
  PerCoreWalConfig,
  PerCoreWalManager,
  type PerCoreWalOptions,
} from "../mod.ts";
import {
  DRAIN_TIMEOUT_MS,
  IngestStats,
  renderMetrics,
  SHUTDOWN_GRACE_MS,
} from "./_ingest_protocol.ts";
import type { FromWorker, ToWorker } from "./_ingest_worker.ts";
import { renderShipMetrics, SHIP_DEFAULTS, type ShipFlags, shipOptions } from "./_ingest_ship.ts";
import type { ShipStatus, ShipToNatsOptions } from "../ship.ts";

/**
 * The server's settings, from the command line.
 *
 * @example
 * ```ts ignore
 * const flags: ServerFlags = parseFlags(["--dir", "./data/ingest", "--port", "0"]);
 * ```
 */
export interface ServerFlags {
  /** Data directory: the WAL in `wal/`, checkpoints in `checkpoints/`. */
  dir: string;
  /** Address to listen on. */
  hostname: string;
  /** Port (0: a free one). */
  port: number;
  /** WAL cores; undefined: the existing WAL's, else the CPU count. */
  cores?: number;
  /** HTTP Workers; undefined: as many as cores. */
  workers?: number;
  /** The WAL's I/O backend. */
  backend: BackendChoice;
  /** Largest request body. */
  maxBodyBytes: number;
  /** How long an append waits for shared-buffer space before 503. */
  backpressureWaitMs: number;
  /** WAL options passed through. */
  wal: PerCoreWalOptions;
  /** `--ship-to` and the other `--ship-*` flags: ship the WAL to NATS JetStream. */
  ship?: ShipFlags;
}

const USAGE =
  `Usage: ingest_server.ts [--dir DIR] [--hostname H] [--port N] [--cores N] [--workers N]
  [--backend auto|io_uring|sync] [--max-body-bytes N] [--backpressure-wait-ms N]
  [--max-record-bytes N] [--shared-buffer-bytes N] [--max-pending-bytes N]
  [--ship-to URL [--ship-stream NAME] [--ship-node ID] [--ship-subject S]
   [--ship-max-unshipped-records N] [--ship-max-unshipped-bytes N]]`;

/**
 * Parses the command line; throws `RangeError`/`TypeError` saying which flag is wrong.
 *
 * @example
 * ```ts ignore
 * const flags = parseFlags(Deno.args); // RangeError: --port must be an integer from 0 to 65535, got "x"
 * ```
 */
export function parseFlags(args: string[]): ServerFlags {
  const f: ServerFlags = {
    dir: "./data/ingest",
    hostname: "127.0.0.1",
    port: 8080,
    backend: "auto",
    maxBodyBytes: 1024 * 1024,
    backpressureWaitMs: 100,
    wal: {},
  };
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (v === "" || !Number.isInteger(n) || n < min || n > max) {
      throw new RangeError(`--${name} must be an integer from ${min} to ${max}, got "${v}"`);
    }
    return n;
  };
  const ship: Partial<ShipFlags> = {};
  for (let i = 0; i < args.length; i++) {
    let name = args[i];
    let value: string | undefined;
    if (!name.startsWith("--")) throw new TypeError(`Unexpected argument "${name}"\n${USAGE}`);
    name = name.slice(2);
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (name === "help") throw new TypeError(USAGE);
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new TypeError(`--${name} needs a value\n${USAGE}`);
    }
    switch (name) {
      case "dir":
        f.dir = value;
        break;
      case "hostname":
        f.hostname = value;
        break;
      case "port":
        f.port = int(name, value, 0, 65535);
        break;
      case "cores":
        f.cores = int(name, value, 1, 1024);
        break;
      case "workers":
        f.workers = int(name, value, 1, 256);
        break;
      case "backend":
        if (value !== "auto" && value !== "io_uring" && value !== "sync") {
          throw new RangeError(`--backend must be auto, io_uring or sync, got "${value}"`);
        }
        f.backend = value;
        break;
      case "max-body-bytes":
        f.maxBodyBytes = int(name, value, 1, 1024 * 1024 * 1024);
        break;
      case "backpressure-wait-ms":
        f.backpressureWaitMs = int(name, value, 0, 60_000);
        break;
      case "max-record-bytes":
        f.wal.maxRecordBytes = int(name, value, 64, 2 ** 31);
        break;
      case "shared-buffer-bytes":
        f.wal.sharedBufferBytes = int(name, value, 4096, 2 ** 30);
        break;
      case "max-pending-bytes":
        f.wal.maxPendingBytes = int(name, value, 1, 2 ** 40);
        break;
      case "ship-to":
        ship.to = value;
        break;
      case "ship-stream":
        ship.stream = value;
        break;
      case "ship-node":
        ship.node = value;
        break;
      case "ship-subject":
        ship.subject = value;
        break;
      case "ship-max-unshipped-records":
        ship.maxUnshippedRecords = int(name, value, 1, 2 ** 53 - 1);
        break;
      case "ship-max-unshipped-bytes":
        ship.maxUnshippedBytes = int(name, value, 1, 2 ** 53 - 1);
        break;
      default:
        throw new TypeError(`Unknown flag --${name}\n${USAGE}`);
    }
  }
  if (ship.to !== undefined) f.ship = { ...SHIP_DEFAULTS, ...ship, to: ship.to };
  else if (Object.keys(ship).length > 0) {
    throw new TypeError(`--ship-* flags need --ship-to URL\n${USAGE}`);
  }
  return f;
}

function _exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * A running server.
 *
 * @example
 * ```ts ignore
 * const server: IngestServer = await startServer(parseFlags(["--port", "0"]));
 * await server.close();
 * ```
 */
export interface IngestServer {
  /** The address every HTTP Worker listens on. */
  readonly url: string;
  /** Workers, cores, backend and directory, for the start-up line. */
  readonly describe: string;
  /** Stops accepting, finishes requests in progress, closes the WAL. Idempotent. */
  close(): Promise<void>;
}

/**
 * Recovers `flags.dir`, opens the WAL and starts the HTTP Workers.
 *
 * @example
 * ```ts ignore
 * const server = await startServer(parseFlags(["--dir", "/tmp/ingest", "--port", "0", "--cores", "2"]));
 * console.log(server.url, server.describe);
 * await fetch(new URL("/events", server.url), { method: "POST", body: '{"key":"k","value":1}\n' });
 * await server.close();
 * ```
 */
export async function startServer(flags: ServerFlags): Promise<IngestServer> {
  const walDir = `${flags.dir.replace(/\/+$/, "")}/wal`;
  const existing = _exists(`${walDir}/wal.json`) ? configFromDirectory(walDir) : undefined;
  const cores = flags.cores ?? existing?.numCores ?? navigator.hardwareConcurrency;
  const config = new PerCoreWalConfig(walDir, cores, { ...flags.wal, backend: flags.backend });

  if (existing !== undefined) {
    // Recovery verifies every segment, cuts a torn tail, and rebuilds the state from the newest
    // checkpoint plus the WAL: the acknowledged events of the previous run are all there.
    const t0 = performance.now();
    using r = await new PerCoreRecoveryManager(config).recover();
    const repaired = r.report.filter((s) => s.applied);
    console.log(
      `Recovered ${walDir}: checkpoint ${r.checkpoint?.id ?? "none"}, ` +
        `${r.entriesReplayed} entries replayed, ${r.state.size} keys, epoch ${r.finalEpoch}, ` +
        `${repaired.length} segment(s) repaired, ${(performance.now() - t0).toFixed(0)} ms`,
    );
  } else {
    Deno.mkdirSync(flags.dir, { recursive: true });
  }

  const manager = await PerCoreWalManager.open(config);
  // Only with --ship-to: the shipper's module (and the NATS client) is loaded now.
  let shipper: { status(): ShipStatus; close(): Promise<void> } | undefined;
  if (flags.ship !== undefined) {
    try {
      const { shipToNats } = await import("../ship.ts");
      shipper = await shipToNats(manager, shipOptions(flags.ship) as ShipToNatsOptions);
    } catch (e) {
      await manager.close();
      throw e;
    }
  }
  const coordinator = new CheckpointCoordinator(manager);
  const stats = new IngestStats();
  const nWorkers = flags.workers ?? cores;
  const workers: Worker[] = [];
  const stopped: Promise<void>[] = [];
  let checkpoints = 0;

  const answer = async (w: Worker, id: number, op: "metrics" | "checkpoint") => {
    let msg: ToWorker;
    try {
      if (op === "metrics") {
        const body = renderMetrics({
          cores: manager.metrics(),
          backend: manager.backend,
          stats: stats.snapshot(),
          checkpoints,
        }) + (shipper === undefined ? "" : renderShipMetrics(shipper.status()));
        msg = {
          type: "rpcResult",
          id,
          status: 200,
          body,
          contentType: "text/plain; version=0.0.4; charset=utf-8",
        };
      } else {
        const meta = await coordinator.checkpoint();
        checkpoints++;
        msg = {
          type: "rpcResult",
          id,
          status: 200,
          contentType: "application/json",
          body: JSON.stringify({
            id: meta.id,
            epoch: meta.epoch,
            entriesMerged: meta.entriesMerged,
            stateEntries: meta.stateEntries,
            walPositions: meta.walPositions,
          }) + "\n",
        };
      }
    } catch (e) {
      msg = {
        type: "rpcResult",
        id,
        status: 500,
        contentType: "application/json",
        body: JSON.stringify({
          error: (e as { code?: string }).code ?? "Internal",
          message: e instanceof Error ? e.message : String(e),
        }) + "\n",
      };
    }
    w.postMessage(msg);
  };

  const spawn = (index: number, port: number): Promise<{ port: number; hostname: string }> => {
    const w = new Worker(new URL("./_ingest_worker.ts", import.meta.url), { type: "module" });
    workers.push(w);
    let onStopped!: () => void;
    stopped.push(new Promise((r) => (onStopped = r)));
    return new Promise((resolve, reject) => {
      w.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "listening") resolve(m);
        else if (m.type === "rpc") answer(w, m.id, m.op);
        else if (m.type === "stopped") onStopped();
        else if (m.type === "fatal") {
          reject(new Error(`HTTP worker ${index}: ${m.message}`));
          onStopped();
        }
      };
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`HTTP worker ${index}: ${e.message}`));
        onStopped();
      };
      const msg: ToWorker = {
        type: "start",
        index,
        hostname: flags.hostname,
        port,
        handles: Array.from({ length: cores }, (_, c) => manager.writerHandle(c)),
        maxBodyBytes: flags.maxBodyBytes,
        maxRecordBytes: config.options.maxRecordBytes,
        backpressureWaitMs: flags.backpressureWaitMs,
        stats: stats.sab,
      };
      w.postMessage(msg);
    });
  };

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      for (const w of workers) w.postMessage({ type: "stop" } satisfies ToWorker);
      // Requests in progress finish first (each Worker gives them DRAIN_TIMEOUT_MS in total,
      // then SHUTDOWN_GRACE_MS to close its connections); a Worker that has not stopped a
      // moment after that is terminated.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(stopped),
        new Promise((r) => (timer = setTimeout(r, DRAIN_TIMEOUT_MS + SHUTDOWN_GRACE_MS + 500))),
      ]);
      clearTimeout(timer);
      for (const w of workers) w.terminate();
      // The shipper stops (the stream keeps what it acknowledged; the rest waits in the WAL).
      await shipper?.close();
      await manager.close();
    })();

  try {
    // The first Worker binds the port (0: a free one); the others join it with reusePort.
    const first = await spawn(0, flags.port);
    for (let i = 1; i < nWorkers; i++) await spawn(i, first.port);
    const host = first.hostname.includes(":") ? `[${first.hostname}]` : first.hostname;
    return {
      url: `http://${host}:${first.port}/`,
      describe: `${nWorkers} HTTP workers, ${cores} cores, backend ${manager.backend}, ` +
        `write mode ${manager.metrics()[0].writeMode}, dir ${flags.dir}`,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

if (import.meta.main) {
  let flags: ServerFlags;
  try {
    flags = parseFlags(Deno.args);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(2);
  }
  let server: IngestServer;
  try {
    server = await startServer(flags);
  } catch (e) {
    // A port in use, a WAL directory held by another process, a configuration mismatch...
    console.error(`Cannot start: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
  console.log(`Listening on ${server.url} (${server.describe})`);
  const shutdown = async (signal: string) => {
    console.log(`${signal}: draining and closing`);
    await server.close();
    console.log("Closed");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
}
