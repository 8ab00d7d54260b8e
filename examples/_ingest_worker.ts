/**
 * One HTTP Worker of the edge-ingestion server (`ingest_server.ts` starts one per `--workers`).
 * It listens with `reusePort` on the shared port, attaches its own writer handle of every core,
 * appends each event of `POST /events` to the core its key hashes to, and answers 200 once all
 * of them are durable. `/metrics` and `/checkpoint` need the manager, which lives on the main
 * thread: they are forwarded there by message.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  type BatchOperationInput,
  batchRecordBytes,
  CoreWalWriter,
  PerCoreWalError,
  type WriterHandle,
} from "../mod.ts";
import {
  bodyKind,
  coreOf,
  DRAIN_TIMEOUT_MS,
  errorResponse,
  IngestError,
  type IngestEvent,
  IngestStats,
  json,
  parseBinary,
  parseNdjson,
  SHUTDOWN_GRACE_MS,
} from "./_ingest_protocol.ts";

/**
 * The main thread's start message.
 *
 * @example
 * ```ts ignore
 * worker.postMessage({ type: "start", index: 0, hostname: "127.0.0.1", port: 0, handles, maxBodyBytes: 1 << 20, maxRecordBytes: 1 << 24, backpressureWaitMs: 100, stats: stats.sab } satisfies WorkerStart);
 * ```
 */
export interface WorkerStart {
  type: "start";
  /** This Worker's index. */
  index: number;
  hostname: string;
  port: number;
  /** One handle per core, for this Worker only. */
  handles: WriterHandle[];
  maxBodyBytes: number;
  maxRecordBytes: number;
  /** How long an append waits for space in a core's shared buffer before the request gets 503. */
  backpressureWaitMs: number;
  /** Shared request counters. */
  stats: SharedArrayBuffer;
}

/**
 * Messages from the main thread.
 *
 * @example
 * ```ts ignore
 * worker.postMessage({ type: "stop" } satisfies ToWorker);
 * ```
 */
export type ToWorker =
  | WorkerStart
  | { type: "stop" }
  | { type: "rpcResult"; id: number; status: number; body: string; contentType: string };

/**
 * Messages to the main thread.
 *
 * @example
 * ```ts ignore
 * worker.onmessage = (e: MessageEvent<FromWorker>) => {
 *   if (e.data.type === "listening") console.log(e.data.port);
 * };
 * ```
 */
export type FromWorker =
  | { type: "listening"; port: number; hostname: string }
  | { type: "rpc"; id: number; op: "metrics" | "checkpoint" }
  | { type: "stopped" }
  | { type: "fatal"; message: string };

const post = (m: FromWorker) => self.postMessage(m);

let writers: CoreWalWriter[] = [];
let cfg: WorkerStart;
let stats: IngestStats;
let server: Deno.HttpServer | undefined;
let nextRpc = 1;
const rpcs = new Map<number, (r: Response) => void>();

function rpc(op: "metrics" | "checkpoint"): Promise<Response> {
  const id = nextRpc++;
  return new Promise((resolve) => {
    rpcs.set(id, resolve);
    post({ type: "rpc", id, op });
  });
}

/** The answer to a request refused or cut short because the server is stopping. */
function shuttingDown(message: string): IngestError {
  return new IngestError(503, "ShuttingDown", message, {
    "retry-after": "1",
    connection: "close",
  });
}

/**
 * Aborted when the drain's time is up: a request still receiving its body then stops reading
 * it and is answered 503 (none of its events was appended, since a body is parsed only whole).
 */
const drainOver = new AbortController();

/** One read of the body, unless the drain's time runs out first. */
function readOrAbandon(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  const signal = drainOver.signal;
  const abandoned = () =>
    shuttingDown(
      `The server stopped before the body was complete (it waits ${
        DRAIN_TIMEOUT_MS / 1000
      } s for requests in progress): nothing of it was appended, retry on another`,
    );
  if (signal.aborted) return Promise.reject(abandoned());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abandoned());
    signal.addEventListener("abort", onAbort, { once: true });
    reader.read().then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Reads the body up to `maxBodyBytes`; 413 beyond (without reading the rest). */
async function readBody(req: Request): Promise<Uint8Array> {
  const max = cfg.maxBodyBytes;
  const tooLarge = (n: string) =>
    new IngestError(
      413,
      "BodyTooLarge",
      `The body is ${n} bytes; this server takes at most ${max} (--max-body-bytes)`,
    );
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await req.body?.cancel();
    throw tooLarge(declared);
  }
  if (req.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  while (true) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await readOrAbandon(reader);
    } catch (e) {
      await reader.cancel().catch(() => {});
      throw e;
    }
    const { done, value } = next;
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel();
      throw tooLarge(`more than ${max}`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

async function ingest(req: Request): Promise<Response> {
  const kind = bodyKind(req.headers.get("content-type"));
  const body = await readBody(req);
  stats.bodyBytes(body.length);
  // The whole body is validated before anything is appended: a malformed request leaves
  // nothing in the WAL.
  const events: IngestEvent[] = kind === "binary"
    ? parseBinary(body, cfg.maxRecordBytes)
    : parseNdjson(body, cfg.maxRecordBytes);
  // One atomic batch per core the request touches (each event stays on its key's core): each
  // core keeps all of its share of the request or none of it, after a refusal or a crash.
  const shares = new Map<number, BatchOperationInput[]>();
  for (const ev of events) {
    const core = coreOf(ev.key, writers.length);
    let ops = shares.get(core);
    if (ops === undefined) shares.set(core, ops = []);
    ops.push({ type: "put", key: ev.key, value: ev.value });
  }
  // Checked before anything is appended, so a 413 leaves nothing in the WAL.
  for (const [core, ops] of shares) {
    const bytes = batchRecordBytes(ops);
    if (bytes > cfg.maxRecordBytes) {
      throw new IngestError(
        413,
        "RequestTooLarge",
        `The request's ${ops.length} events for core ${core} make a batch of ${bytes} bytes; ` +
          `a request is appended all or nothing, as one record per core, of at most ` +
          `${cfg.maxRecordBytes} bytes (--max-record-bytes): split it`,
      );
    }
  }
  const t0 = performance.now();
  const sequences: Record<string, number[]> = {};
  const last = new Map<number, number>();
  let appended = 0;
  try {
    // Room on every core first, then every append in one turn of the event loop (no await in
    // between: only this thread fills its buffers, and no other request runs meanwhile), so a
    // refusal for backpressure ("503") leaves nothing in the WAL.
    const sized = [...shares].map(([core, ops]) => ({ core, ops, bytes: batchRecordBytes(ops) }));
    const deadline = performance.now() + cfg.backpressureWaitMs;
    while (!sized.every(({ core, bytes }) => writers[core].hasRoom(bytes))) {
      for (const { core, bytes } of sized) {
        const timeoutMs = Math.max(0, Math.ceil(deadline - performance.now()));
        await writers[core].waitForRoom(bytes, { timeoutMs });
      }
    }
    for (const { core, ops } of sized) {
      const seq = writers[core].appendBatch(ops);
      appended += ops.length;
      last.set(core, seq);
      sequences[core] = ops.map((_, i) => seq - ops.length + 1 + i);
    }
    await Promise.all([...last].map(([core, seq]) => writers[core].waitDurable(seq)));
  } catch (e) {
    // Once appended, the batches reach the disk (each whole) and are replayed by recovery even
    // if the request fails afterwards (a core failed): they are never acknowledged.
    stats.unacknowledged(appended);
    if (e instanceof PerCoreWalError && e.code === "Backpressure") {
      throw new IngestError(
        503,
        "Backpressure",
        `The WAL is behind (${e.message}); nothing of the request was appended: retry it later`,
        { "retry-after": "1" },
      );
    }
    throw e;
  }
  stats.acknowledged(events.length, (performance.now() - t0) * 1000);
  return json(200, { count: events.length, sequences });
}

function methodNotAllowed(allow: string): never {
  throw new IngestError(405, "MethodNotAllowed", `Use ${allow} here`, { allow });
}

async function handle(req: Request): Promise<Response> {
  const path = new URL(req.url).pathname;
  try {
    switch (path) {
      case "/events":
        if (req.method !== "POST") methodNotAllowed("POST");
        return await ingest(req);
      case "/metrics":
        if (req.method !== "GET") methodNotAllowed("GET");
        return await rpc("metrics");
      case "/checkpoint":
        if (req.method !== "POST") methodNotAllowed("POST");
        return await rpc("checkpoint");
      default:
        throw new IngestError(
          404,
          "NotFound",
          `No route ${path}: try /events, /metrics, /checkpoint`,
        );
    }
  } catch (e) {
    let err: IngestError;
    if (e instanceof IngestError) err = e;
    else {
      console.error(`worker ${cfg.index}: ${req.method} ${path} failed:`, e);
      err = new IngestError(
        500,
        e instanceof PerCoreWalError ? e.code : "Internal",
        e instanceof Error ? e.message : String(e),
      );
    }
    // An unread body would keep the connection busy; drop it.
    if (req.body !== null && !req.bodyUsed) await req.body.cancel().catch(() => {});
    return errorResponse(err);
  }
}

/** Requests being handled, and whether the main thread asked to stop. */
let inflight = 0;
let stopping = false;
let drained: (() => void) | undefined;

/** Resolves after `ms`, or at once if `ms <= 0`; the timer is cleared when `p` settles first. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, ms))))]);
  } finally {
    clearTimeout(timer);
  }
}

async function stop(): Promise<void> {
  // Deno's server.shutdown() cuts request bodies still being received, and then waits for every
  // connection with no bound, so first let every request in progress finish (new ones get 503
  // meanwhile) for at most DRAIN_TIMEOUT_MS in total; then the ones still receiving their body
  // are answered 503 (nothing of them was appended), and shutdown() gets SHUTDOWN_GRACE_MS.
  // The main thread closes the WAL only after "stopped", so acknowledged events are durable.
  stopping = true;
  const deadline = performance.now() + DRAIN_TIMEOUT_MS;
  if (inflight > 0) {
    await within(new Promise<void>((r) => (drained = r)), DRAIN_TIMEOUT_MS);
  }
  drainOver.abort();
  if (server !== undefined) {
    await within(server.shutdown(), deadline + SHUTDOWN_GRACE_MS - performance.now());
  }
  for (const w of writers) w.close();
  writers = [];
  post({ type: "stopped" });
  self.close();
}

async function serve(req: Request): Promise<Response> {
  if (stopping) {
    await req.body?.cancel().catch(() => {});
    return errorResponse(shuttingDown("The server is shutting down: retry on another"));
  }
  inflight++;
  try {
    return await handle(req);
  } finally {
    if (--inflight === 0 && stopping) drained?.();
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === "start") {
    try {
      cfg = m;
      stats = new IngestStats(m.stats);
      writers = m.handles.map((h) => CoreWalWriter.attach(h));
      server = Deno.serve({
        hostname: m.hostname,
        port: m.port,
        reusePort: true,
        onListen: ({ hostname, port }) => post({ type: "listening", hostname, port }),
      }, async (req) => {
        const res = await serve(req);
        stats.response(res.status, new URL(req.url).pathname);
        return res;
      });
    } catch (err) {
      post({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
    }
  } else if (m.type === "rpcResult") {
    const resolve = rpcs.get(m.id);
    rpcs.delete(m.id);
    resolve?.(
      new Response(m.body, { status: m.status, headers: { "content-type": m.contentType } }),
    );
  } else if (m.type === "stop") {
    stop().catch((err) => post({ type: "fatal", message: String(err) }));
  }
};
