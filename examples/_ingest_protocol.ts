/**
 * The edge-ingestion server's wire formats and bookkeeping, without I/O: parsing and validating
 * request bodies, choosing a core for a key, the counters the HTTP Workers share, and the
 * Prometheus text rendering of `/metrics`. Used by `ingest_server.ts`, `_ingest_worker.ts`, the
 * tests and the load generator's helpers.
 *
 * @module
 */

import {
  type CoreMetrics,
  LATENCY_BUCKET_BOUNDS_US,
  MAX_KEY_BYTES,
  PUT_OVERHEAD_BYTES,
} from "../mod.ts";

/**
 * One event of a request: the key and value bytes of a `put`.
 *
 * @example
 * ```ts ignore
 * const [ev] = parseNdjson(new TextEncoder().encode('{"key":"k","value":1}\n'), 1 << 20);
 * console.log(ev.key, ev.value); // bytes of "k", bytes of "1"
 * ```
 */
export interface IngestEvent {
  /** The key (1 to 65 535 bytes). */
  key: Uint8Array;
  /** The value: the JSON text of an NDJSON event's `value`, or a binary event's raw bytes. */
  value: Uint8Array;
}

/**
 * Why a request is refused, with the HTTP status it maps to.
 *
 * @example
 * ```ts ignore
 * throw new IngestError(400, "MalformedEvent", "line 2: \"key\" is missing");
 * ```
 */
export class IngestError extends Error {
  /** The HTTP status: 400, 404, 405, 413, 415, 500 or 503. */
  readonly status: number;
  /** A short machine-readable code, such as `"MalformedEvent"`. */
  readonly code: string;
  /** Extra response headers (`Retry-After`, `Allow`). */
  readonly headers: Record<string, string>;

  /** An error answered with `status`, `{"error": code, "message": message}`. */
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "IngestError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * The magic at the start of a binary batch: `"PWB1"`.
 *
 * @example
 * ```ts ignore
 * const isBinary = BINARY_MAGIC.every((b, i) => body[i] === b);
 * ```
 */
export const BINARY_MAGIC: Uint8Array = new Uint8Array([0x50, 0x57, 0x42, 0x31]);

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * What the body's `Content-Type` says it is; throws 415 for anything else.
 *
 * @example
 * ```ts ignore
 * bodyKind("application/x-ndjson; charset=utf-8"); // "ndjson"
 * bodyKind("application/octet-stream"); // "binary"
 * ```
 */
export function bodyKind(contentType: string | null): "ndjson" | "binary" {
  const t = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (t === "application/octet-stream") return "binary";
  if (
    t === "" || t === "application/x-ndjson" || t === "application/ndjson" ||
    t === "application/json" || t === "text/plain"
  ) {
    return "ndjson";
  }
  throw new IngestError(
    415,
    "UnsupportedMediaType",
    `Content-Type "${t}" is not accepted: send application/x-ndjson or application/octet-stream`,
  );
}

/** Checks one event's sizes; `where` names it in messages ("line 3", "event 2"). */
function _checkSizes(ev: IngestEvent, where: string, maxRecordBytes: number): void {
  if (ev.key.length === 0) {
    throw new IngestError(400, "MalformedEvent", `${where}: the key is empty`);
  }
  if (ev.key.length > MAX_KEY_BYTES) {
    throw new IngestError(
      400,
      "MalformedEvent",
      `${where}: the key is ${ev.key.length} bytes; keys are at most ${MAX_KEY_BYTES} bytes`,
    );
  }
  const record = PUT_OVERHEAD_BYTES + ev.key.length + ev.value.length;
  if (record > maxRecordBytes) {
    throw new IngestError(
      413,
      "EventTooLarge",
      `${where}: the event makes a record of ${record} bytes; the WAL takes at most ` +
        `${maxRecordBytes} (--max-record-bytes)`,
    );
  }
}

/**
 * Parses an NDJSON body: one `{"key": "<non-empty string>", "value": <any JSON>}` object per
 * line (blank lines and a `\r` before `\n` are allowed; other fields are refused). The value is
 * stored as its JSON text (`JSON.stringify` of the parsed value). Any bad line refuses the whole
 * body with a 400 naming the line.
 *
 * @example
 * ```ts ignore
 * const events = parseNdjson(new TextEncoder().encode('{"key":"a","value":{"x":1}}\n'), 1 << 20);
 * // events[0].value holds the bytes of '{"x":1}'
 * ```
 */
export function parseNdjson(body: Uint8Array, maxRecordBytes: number): IngestEvent[] {
  let text: string;
  try {
    text = dec.decode(body);
  } catch {
    throw new IngestError(400, "MalformedBody", "The body is not valid UTF-8");
  }
  const out: IngestEvent[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") continue;
    const where = `line ${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new IngestError(
        400,
        "MalformedEvent",
        `${where}: invalid JSON (${e instanceof Error ? e.message : String(e)})`,
      );
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      throw new IngestError(400, "MalformedEvent", `${where}: an event must be a JSON object`);
    }
    const o = obj as Record<string, unknown>;
    if (!("key" in o)) throw new IngestError(400, "MalformedEvent", `${where}: "key" is missing`);
    if (typeof o.key !== "string") {
      throw new IngestError(
        400,
        "MalformedEvent",
        `${where}: "key" must be a string, got ${o.key === null ? "null" : typeof o.key}`,
      );
    }
    if (!("value" in o)) {
      throw new IngestError(400, "MalformedEvent", `${where}: "value" is missing`);
    }
    for (const f of Object.keys(o)) {
      if (f !== "key" && f !== "value") {
        throw new IngestError(400, "MalformedEvent", `${where}: unknown field "${f}"`);
      }
    }
    const ev = { key: enc.encode(o.key), value: enc.encode(JSON.stringify(o.value)) };
    _checkSizes(ev, where, maxRecordBytes);
    out.push(ev);
  }
  if (out.length === 0) throw new IngestError(400, "EmptyBatch", "The body holds no events");
  return out;
}

/**
 * Parses a binary batch: the magic `PWB1`, then events back to back, each a `u16` key length
 * (little-endian, 1 to 65 535), a `u32` value length (little-endian), the key bytes and the value
 * bytes. The body must end exactly after an event. Anything else refuses the whole body.
 *
 * @example
 * ```ts ignore
 * const events = parseBinary(encodeBinary([{ key: "a", value: Uint8Array.of(1, 2) }]), 1 << 20);
 * ```
 */
export function parseBinary(body: Uint8Array, maxRecordBytes: number): IngestEvent[] {
  if (body.length < 4 || !BINARY_MAGIC.every((b, i) => body[i] === b)) {
    throw new IngestError(
      400,
      "MalformedBody",
      'A binary batch must start with the magic "PWB1"',
    );
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out: IngestEvent[] = [];
  let off = 4;
  while (off < body.length) {
    const where = `event ${out.length + 1} (offset ${off})`;
    if (off + 6 > body.length) {
      throw new IngestError(400, "MalformedEvent", `${where}: truncated header`);
    }
    const keyLen = view.getUint16(off, true);
    const valueLen = view.getUint32(off + 2, true);
    const end = off + 6 + keyLen + valueLen;
    if (end > body.length) {
      throw new IngestError(
        400,
        "MalformedEvent",
        `${where}: says ${keyLen} key and ${valueLen} value bytes; only ${
          body.length - off - 6
        } follow`,
      );
    }
    const ev = {
      key: body.slice(off + 6, off + 6 + keyLen),
      value: body.slice(off + 6 + keyLen, end),
    };
    _checkSizes(ev, where, maxRecordBytes);
    out.push(ev);
    off = end;
  }
  if (out.length === 0) throw new IngestError(400, "EmptyBatch", "The body holds no events");
  return out;
}

/**
 * Encodes events as a binary batch (the inverse of {@linkcode parseBinary}).
 *
 * @example
 * ```ts ignore
 * await fetch("http://127.0.0.1:8080/events", {
 *   method: "POST",
 *   headers: { "content-type": "application/octet-stream" },
 *   body: encodeBinary([{ key: "sensor:1", value: Uint8Array.of(42) }]),
 * });
 * ```
 */
export function encodeBinary(
  events: { key: string | Uint8Array; value: Uint8Array }[],
): Uint8Array<ArrayBuffer> {
  const parts = events.map((e) => ({
    key: typeof e.key === "string" ? enc.encode(e.key) : e.key,
    value: e.value,
  }));
  const total = parts.reduce((n, p) => n + 6 + p.key.length + p.value.length, 4);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(BINARY_MAGIC, 0);
  let off = 4;
  for (const p of parts) {
    view.setUint16(off, p.key.length, true);
    view.setUint32(off + 2, p.value.length, true);
    out.set(p.key, off + 6);
    out.set(p.value, off + 6 + p.key.length);
    off += 6 + p.key.length + p.value.length;
  }
  return out;
}

/**
 * The core of a key: FNV-1a (32 bits) of its bytes, modulo the number of cores.
 *
 * @example
 * ```ts ignore
 * const core = coreOf(new TextEncoder().encode("user:1"), 2); // 1
 * ```
 */
export function coreOf(key: Uint8Array, numCores: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key[i];
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % numCores;
}

// ---------------------------------------------------------------------------------------------
// Shutdown

/**
 * How long an HTTP Worker, asked to stop, lets requests in progress run (a slow upload), counted
 * from the stop message, before it answers the ones still receiving their body 503. The main
 * thread's own limit (`ingest_server.ts`) is this plus {@linkcode SHUTDOWN_GRACE_MS} plus a
 * margin.
 *
 * @example
 * ```ts ignore
 * setTimeout(() => worker.terminate(), DRAIN_TIMEOUT_MS + SHUTDOWN_GRACE_MS + 500);
 * ```
 */
export const DRAIN_TIMEOUT_MS = 10_000;

/**
 * How long, after {@linkcode DRAIN_TIMEOUT_MS}, `server.shutdown()` may take to send the last
 * answers and close the connections (one still sending its request head, say) before the
 * Worker stops anyway.
 *
 * @example
 * ```ts ignore
 * await Promise.race([server.shutdown(), delay(SHUTDOWN_GRACE_MS)]);
 * ```
 */
export const SHUTDOWN_GRACE_MS = 1_000;

// ---------------------------------------------------------------------------------------------
// Counters shared by the HTTP Workers (one SharedArrayBuffer, Atomics.add), read by /metrics.

/**
 * The statuses counted per response.
 *
 * @example
 * ```ts ignore
 * for (const code of STATUSES) console.log(code);
 * ```
 */
export const STATUSES = [200, 400, 404, 405, 413, 415, 500, 503] as const;

/**
 * Upper bounds (seconds) of the acknowledgement latency histogram's buckets.
 *
 * @example
 * ```ts ignore
 * console.log(ACK_BUCKETS_S.at(-1)); // 5 (seconds); above it: +Inf
 * ```
 */
export const ACK_BUCKETS_S = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
] as const;

/**
 * The routes whose responses are counted apart from the ingestion responses: scraping
 * `/metrics` or taking a checkpoint is not ingestion, and counting a scrape in
 * `ingest_http_responses_total` made every scrape move the `code="200"` counter it reports.
 *
 * @example
 * ```ts ignore
 * stats.response(200, new URL(req.url).pathname); // "/metrics": counted by route
 * ```
 */
export const ADMIN_ROUTES = ["/metrics", "/checkpoint"] as const;

const S_ADMIN = STATUSES.length;
const S_EVENTS = S_ADMIN + ADMIN_ROUTES.length * STATUSES.length;
const S_BODY_BYTES = S_EVENTS + 1;
const S_UNACKED = S_EVENTS + 2;
const S_LAT_SUM_US = S_EVENTS + 3;
const S_LAT_COUNT = S_EVENTS + 4;
const S_BUCKETS = S_EVENTS + 5;
const S_SLOTS = S_BUCKETS + ACK_BUCKETS_S.length + 1;

/**
 * Request counters shared between threads.
 *
 * @example
 * ```ts ignore
 * const stats = new IngestStats(); // in the main thread
 * worker.postMessage({ stats: stats.sab });
 * // in the Worker: const shared = new IngestStats(sab); shared.response(200);
 * console.log(stats.snapshot().responses);
 * ```
 */
export class IngestStats {
  /** The shared memory (pass it to the HTTP Workers). */
  readonly sab: SharedArrayBuffer;
  readonly #a: BigInt64Array;

  /** Views over `sab`, or new zeroed counters. */
  constructor(sab?: SharedArrayBuffer) {
    this.sab = sab ?? new SharedArrayBuffer(S_SLOTS * 8);
    this.#a = new BigInt64Array(this.sab);
  }

  /**
   * Counts one response of `status` (other statuses count as 500) to a request for `path`: by
   * route for {@linkcode ADMIN_ROUTES}, else as an ingestion response (`/events`, and requests
   * for unknown paths).
   */
  response(status: number, path = "/events"): void {
    let i = STATUSES.indexOf(status as typeof STATUSES[number]);
    if (i < 0) i = STATUSES.indexOf(500);
    const route = ADMIN_ROUTES.indexOf(path as typeof ADMIN_ROUTES[number]);
    Atomics.add(this.#a, route < 0 ? i : S_ADMIN + route * STATUSES.length + i, 1n);
  }

  /** Counts a request's body bytes. */
  bodyBytes(n: number): void {
    Atomics.add(this.#a, S_BODY_BYTES, BigInt(n));
  }

  /** Counts events acknowledged durable, and the time from parsed body to acknowledgement. */
  acknowledged(events: number, latencyUs: number): void {
    Atomics.add(this.#a, S_EVENTS, BigInt(events));
    Atomics.add(this.#a, S_LAT_SUM_US, BigInt(Math.round(latencyUs)));
    Atomics.add(this.#a, S_LAT_COUNT, 1n);
    const s = latencyUs / 1e6;
    let b = ACK_BUCKETS_S.findIndex((le) => s <= le);
    if (b < 0) b = ACK_BUCKETS_S.length;
    Atomics.add(this.#a, S_BUCKETS + b, 1n);
  }

  /** Counts events appended by a request that was then refused (in the WAL, not acknowledged). */
  unacknowledged(events: number): void {
    Atomics.add(this.#a, S_UNACKED, BigInt(events));
  }

  /** A consistent-enough copy of the counters. */
  snapshot(): IngestStatsSnapshot {
    const a = this.#a;
    const get = (i: number) => Number(Atomics.load(a, i));
    return {
      responses: STATUSES.map((s, i) => [s, get(i)] as [number, number]),
      adminResponses: ADMIN_ROUTES.flatMap((route, r) =>
        STATUSES.map((s, i) =>
          [route, s, get(S_ADMIN + r * STATUSES.length + i)] as [string, number, number]
        )
      ),
      eventsAcknowledged: get(S_EVENTS),
      bodyBytes: get(S_BODY_BYTES),
      eventsUnacknowledged: get(S_UNACKED),
      ackLatencySumS: get(S_LAT_SUM_US) / 1e6,
      ackLatencyCount: get(S_LAT_COUNT),
      ackBuckets: Array.from({ length: ACK_BUCKETS_S.length + 1 }, (_, i) => get(S_BUCKETS + i)),
    };
  }
}

/**
 * The counters at one moment.
 *
 * @example
 * ```ts ignore
 * const { eventsAcknowledged, ackLatencyCount } = stats.snapshot();
 * ```
 */
export interface IngestStatsSnapshot {
  /** [status, responses] of `/events` and of unknown paths (not of {@linkcode ADMIN_ROUTES}). */
  responses: [number, number][];
  /** [route, status, responses] of each of {@linkcode ADMIN_ROUTES}. */
  adminResponses: [string, number, number][];
  /** Events acknowledged durable. */
  eventsAcknowledged: number;
  /** Request body bytes read. */
  bodyBytes: number;
  /** Events appended by requests then refused (503/500): in the WAL, never acknowledged. */
  eventsUnacknowledged: number;
  /** Sum of acknowledgement latencies, seconds. */
  ackLatencySumS: number;
  /** Acknowledged requests. */
  ackLatencyCount: number;
  /** Per bucket of {@linkcode ACK_BUCKETS_S} (and +Inf last), non-cumulative counts. */
  ackBuckets: number[];
}

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition (format 0.0.4)

/**
 * What `/metrics` renders.
 *
 * @example
 * ```ts ignore
 * const text = renderMetrics({ cores: manager.metrics(), backend: manager.backend, stats: stats.snapshot(), checkpoints: 0 });
 * ```
 */
export interface MetricsInput {
  /** `manager.metrics()`. */
  cores: CoreMetrics[];
  /** `manager.backend`. */
  backend: string;
  /** The HTTP Workers' counters. */
  stats: IngestStatsSnapshot;
  /** Checkpoints taken since start. */
  checkpoints: number;
}

/**
 * Renders the metrics in the Prometheus text format.
 *
 * @example
 * ```ts ignore
 * return new Response(renderMetrics(input), { headers: { "content-type": "text/plain; version=0.0.4" } });
 * ```
 */
export function renderMetrics(m: MetricsInput): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const perCore = (
    name: string,
    type: string,
    help: string,
    value: (c: CoreMetrics) => number,
  ) => {
    family(name, type, help);
    for (const c of m.cores) out.push(`${name}{core="${c.coreId}"} ${value(c)}`);
  };
  perCore(
    "percore_wal_appends_total",
    "counter",
    "Records appended to the core's WAL since start.",
    (c) => c.recordsAppended,
  );
  perCore(
    "percore_wal_appended_bytes_total",
    "counter",
    "Record bytes appended to the core's WAL since start (padding excluded).",
    (c) => c.bytesAppended,
  );
  perCore(
    "percore_wal_batches_total",
    "counter",
    "Write batches submitted, counted when submitted and published at once. A batch in flight " +
      "is counted here and not yet in percore_wal_fdatasync_latency_seconds_count, which is " +
      "also up to 20 ms older: in one scrape under load the two differ by the batches in flight " +
      "plus those completed in the last 20 ms; at rest they are equal.",
    (c) => c.batches,
  );
  perCore(
    "percore_wal_fdatasyncs_total",
    "counter",
    "fdatasyncs counted when submitted, one per batch written as writes and an fdatasync. A " +
      "batch of at most 128 KiB in direct write mode is written with durable writes " +
      "(RWF_DSYNC) and has none; in dsync write mode no batch has one.",
    (c) => c.fdatasyncs,
  );
  const lat = "percore_wal_fdatasync_latency_seconds";
  family(
    lat,
    "histogram",
    "Time from a batch's submission to its durability (its writes and fdatasync, or its " +
      "durable writes), one sample per batch counted when durable, as measured by the core's " +
      "Worker and published at most every 20 ms (so _count may lag percore_wal_batches_total, " +
      "which counts submissions).",
  );
  for (const c of m.cores) {
    const b = c.syncLatencyBuckets;
    LATENCY_BUCKET_BOUNDS_US.forEach((us, i) => {
      out.push(`${lat}_bucket{core="${c.coreId}",le="${us / 1e6}"} ${b.counts[i]}`);
    });
    // The Worker publishes the count just before the buckets: a read between two
    // publications may see newer buckets than the count.
    const count = Math.max(c.syncLatency.count, b.counts.at(-1) ?? 0);
    out.push(`${lat}_bucket{core="${c.coreId}",le="+Inf"} ${count}`);
    out.push(`${lat}_sum{core="${c.coreId}"} ${b.sumUs / 1e6}`);
    out.push(`${lat}_count{core="${c.coreId}"} ${count}`);
  }
  perCore(
    "percore_wal_fdatasync_latency_max_seconds",
    "gauge",
    "Largest batch durability latency since start.",
    (c) => c.syncLatency.maxUs / 1e6,
  );
  perCore(
    "percore_wal_queue_depth",
    "gauge",
    "Records appended by producers and not yet taken in by the core's Worker.",
    (c) => c.queuedRecords,
  );
  perCore(
    "percore_wal_pending_bytes",
    "gauge",
    "Appended bytes not yet durable.",
    (c) => c.pendingBytes,
  );
  perCore(
    "percore_wal_in_flight_batches",
    "gauge",
    "Batches submitted and not yet durable.",
    (c) => c.inFlightBatches,
  );
  perCore("percore_wal_core_failed", "gauge", "1 if the core failed.", (c) => c.failed ? 1 : 0);
  family("percore_wal_backend_info", "gauge", "The I/O backend and write mode in use.");
  out.push(
    `percore_wal_backend_info{backend="${m.backend}",write_mode="${
      m.cores[0]?.writeMode ?? "unknown"
    }"} 1`,
  );
  family(
    "ingest_http_responses_total",
    "counter",
    "HTTP responses by status code to POST /events and to unknown paths; /metrics and " +
      "/checkpoint are counted in ingest_http_admin_responses_total.",
  );
  for (const [s, n] of m.stats.responses) out.push(`ingest_http_responses_total{code="${s}"} ${n}`);
  family(
    "ingest_http_admin_responses_total",
    "counter",
    "HTTP responses by route (/metrics, /checkpoint) and status code; a scrape is counted " +
      "once answered, so it shows the scrapes before it.",
  );
  for (const [route, s, n] of m.stats.adminResponses) {
    out.push(`ingest_http_admin_responses_total{route="${route}",code="${s}"} ${n}`);
  }
  family("ingest_events_acknowledged_total", "counter", "Events acknowledged durable (200).");
  out.push(`ingest_events_acknowledged_total ${m.stats.eventsAcknowledged}`);
  family(
    "ingest_events_unacknowledged_total",
    "counter",
    "Events appended by requests then refused (503/500): in the WAL, never acknowledged.",
  );
  out.push(`ingest_events_unacknowledged_total ${m.stats.eventsUnacknowledged}`);
  family("ingest_body_bytes_total", "counter", "Request body bytes read on /events.");
  out.push(`ingest_body_bytes_total ${m.stats.bodyBytes}`);
  const ack = "ingest_ack_latency_seconds";
  family(
    ack,
    "histogram",
    "Time from a parsed /events body to every event of it being durable (appends + fdatasync).",
  );
  let cum = 0;
  ACK_BUCKETS_S.forEach((le, i) => {
    cum += m.stats.ackBuckets[i];
    out.push(`${ack}_bucket{le="${le}"} ${cum}`);
  });
  cum += m.stats.ackBuckets[ACK_BUCKETS_S.length];
  out.push(`${ack}_bucket{le="+Inf"} ${cum}`);
  out.push(`${ack}_sum ${m.stats.ackLatencySumS}`, `${ack}_count ${m.stats.ackLatencyCount}`);
  family("ingest_checkpoints_total", "counter", "Checkpoints taken through POST /checkpoint.");
  out.push(`ingest_checkpoints_total ${m.checkpoints}`);
  return out.join("\n") + "\n";
}

/**
 * A JSON response.
 *
 * @example
 * ```ts ignore
 * return json(200, { count: 3 });
 * ```
 */
export function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * The response of a refused request.
 *
 * @example
 * ```ts ignore
 * return errorResponse(new IngestError(404, "NotFound", "No route /x"));
 * ```
 */
export function errorResponse(e: IngestError): Response {
  return json(e.status, { error: e.code, message: e.message }, e.headers);
}
