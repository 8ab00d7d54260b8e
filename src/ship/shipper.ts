/**
 * `shipToNats`: a WAL's durable entries into a NATS JetStream stream, exactly once and in order
 * per core (docs/SHIPPING.md). One loop per core (`core_shipper.ts`) on one connection.
 *
 * @module
 */

import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import { PerCoreWalError } from "../errors.ts";
import { PerCoreWalReader } from "../reader.ts";
import { listCoreSegments } from "../segment_files.ts";
import type { PerCoreWalConfig } from "../config.ts";
import type { PerCoreWalEntry, WalPosition } from "../types.ts";
import { configFromDirectory } from "../wal_meta.ts";
import { batchWatchOf, type EntryBatch, type WatchOptions, watchWalBatches } from "../watch.ts";
import {
  CoreShipper,
  type CoreShipState,
  type OpenEntries,
  type ShipperHooks,
} from "./core_shipper.ts";
import { type ShipSettings, shipSettings, type ShipToNatsOptions } from "./options.ts";
import { UnshippedMeter } from "./unshipped.ts";

/**
 * What `shipToNats` ships: an open manager of this process (the `PerCoreWalManager` of
 * `@percore/wal`: its `watch()` stream), or the path of a WAL directory another process writes.
 *
 * @example
 * ```ts
 * import type { ShipSource } from "@percore/wal/ship";
 *
 * const source: ShipSource = "./data/wal";
 * ```
 */
export type ShipSource = string | URL | ShipManager;

/**
 * The part of a `PerCoreWalManager` the shipper uses.
 *
 * @example
 * ```ts
 * import type { ShipManager } from "@percore/wal/ship";
 * import { PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open("./data/wal", { cores: 2 });
 * const source: ShipManager = manager;
 * ```
 */
export interface ShipManager {
  /** The WAL's configuration (its directory and number of cores). */
  readonly config: PerCoreWalConfig;
  /** Each core's durable position. */
  syncedPositions(): WalPosition[];
  /** The live stream of durable entries. */
  watch(options?: WatchOptions): ReadableStream<PerCoreWalEntry>;
}

/**
 * The state of the shipping of one core.
 *
 * @example
 * ```ts
 * import type { ShipCoreStatus } from "@percore/wal/ship";
 *
 * function lagOf(s: ShipCoreStatus): string {
 *   return `core ${s.coreId}: ${s.unshippedRecords} records behind`;
 * }
 * ```
 */
export interface ShipCoreStatus {
  /** The core. */
  coreId: number;
  /** The subject its messages go to. */
  subject: string;
  /** The last sequence the stream holds for this core (0: none yet). */
  lastShippedSequence: number;
  /** The stream sequence of this core's last message (0: none). */
  lastStreamSequence: number;
  /**
   * Entries durable but not acknowledged, as far as known: for a manager, its durable sequence
   * less the last shipped; for a directory, what the shipper has read and not shipped.
   */
  unshippedRecords: number;
  /**
   * Bytes of the WAL not yet acknowledged: the records (headers, bodies, padding) after the
   * shipped mark's record up to the durable end (a directory: the end of the valid records in
   * the files), across segments; as last measured (after each acknowledgement and every 50 ms).
   * What `maxUnshippedBytes` compares with.
   */
  unshippedBytes: number;
  /** Milliseconds since the append of the oldest entry read and not acknowledged. */
  oldestUnshippedAgeMs?: number;
  /** When the last acknowledgement came (`Date.now()` milliseconds). */
  lastAckAt?: number;
  /** How many publishes or look-ups failed and were retried. */
  retries: number;
  /** What the core's loop does now. */
  state: CoreShipState;
  /** The last error met (cleared by the next acknowledgement). */
  error?: string;
}

/**
 * The state of a shipper.
 *
 * @example
 * ```ts
 * import type { ShipStatus } from "@percore/wal/ship";
 *
 * function behind(s: ShipStatus): number {
 *   return s.cores.reduce((n, c) => n + c.unshippedRecords, 0);
 * }
 * ```
 */
export interface ShipStatus {
  /** The connection to the server. */
  connection: "connected" | "disconnected" | "reconnecting" | "closed";
  /** Per shipped core. */
  cores: ShipCoreStatus[];
}

/**
 * A running shipper: see {@linkcode shipToNats}.
 *
 * @example
 * ```ts ignore
 * import { shipToNats } from "@percore/wal/ship";
 *
 * await using shipper = await shipToNats("./data/wal", { servers: "nats://127.0.0.1:4222", node: "n1" });
 * await shipper.drained();
 * console.log(shipper.status().cores.map((c) => c.lastShippedSequence));
 * ```
 */
export class NatsShipper implements AsyncDisposable {
  readonly #nc: NatsConnection;
  readonly #cores: CoreShipper[];
  readonly #stop: AbortController;
  readonly #loops: Promise<void>;
  readonly #durableNow: () => Promise<number[]>;
  readonly #waiters = new Set<() => void>();
  #connection: ShipStatus["connection"] = "connected";
  readonly #hooks: ShipperHooks;
  #closing: Promise<void> | undefined;
  #unlisten: (() => void) | undefined;
  #holdTimer: ReturnType<typeof setInterval> | undefined;

  /** Internal: made by {@linkcode shipToNats}. */
  constructor(
    nc: NatsConnection,
    cores: CoreShipper[],
    stop: AbortController,
    durableNow: () => Promise<number[]>,
    signal: AbortSignal | undefined,
    hooks: ShipperHooks = {},
  ) {
    this.#nc = nc;
    this.#cores = cores;
    this.#stop = stop;
    this.#durableNow = durableNow;
    this.#hooks = hooks;
    this.#loops = Promise.all(cores.map((c) => c.run())).then(() => {});
    // The unshipped measure (and the limits) after each acknowledgement, and on this timer:
    // a core grows while no acknowledgement comes (the server is down).
    this.#holdTimer = setInterval(() => {
      for (const c of cores) {
        c.checkHold();
        void c.remeasure();
      }
    }, HOLD_CHECK_MS);
    this.#watchConnection();
    if (signal !== undefined) {
      const abort = () => void this.close();
      signal.addEventListener("abort", abort, { once: true });
      this.#unlisten = () => signal.removeEventListener("abort", abort);
    }
  }

  /** Wakes the waiters of `drained()` (after an ack, a failure or the end). */
  progress(): void {
    for (const w of [...this.#waiters]) w();
  }

  async #watchConnection(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (s.type === "disconnect") this.#connection = "disconnected";
      else if (s.type === "reconnecting") this.#connection = "reconnecting";
      else if (s.type === "reconnect") {
        this.#connection = "connected";
        // What was in flight may or may not be in the stream: ask it.
        for (const c of this.#cores) c.resync();
      }
    }
  }

  /**
   * Resolves when every entry durable at the time of the call is acknowledged by the stream (and
   * the marks in the WAL directory say so: a checkpoint then retires what it covers). Rejects
   * with a core's failure, when the shipper closes first, or with the signal's reason.
   */
  async drained(options: { signal?: AbortSignal } = {}): Promise<void> {
    const targets = await this.#durableNow();
    const signal = options.signal;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        const failed = this.#cores.find((c) => c.state === "failed");
        if (failed !== undefined) return done(failed.error);
        if (this.#cores.every((c, i) => c.lastShipped >= targets[i])) return done();
        if (signal?.aborted) return done(signal.reason);
        if (this.#closing !== undefined || this.#cores.every((c) => c.finished)) {
          return done(new PerCoreWalError("Closed", "The shipper closed before it drained"));
        }
      };
      const done = (error?: unknown) => {
        this.#waiters.delete(check);
        signal?.removeEventListener("abort", check);
        if (error === undefined) resolve();
        else reject(error);
      };
      this.#waiters.add(check);
      signal?.addEventListener("abort", check, { once: true });
      check();
    });
    await this.#hooks.marked?.();
  }

  /** Per core: last shipped sequence, lag, last ack, retries, state; and the connection. */
  status(): ShipStatus {
    const now = Date.now();
    const nowNs = BigInt(now) * 1_000_000n;
    return {
      connection: this.#closing !== undefined ? "closed" : this.#connection,
      cores: this.#cores.map((c) => {
        const oldest = c.pending[0];
        const s: ShipCoreStatus = {
          coreId: c.coreId,
          subject: c.subject,
          lastShippedSequence: c.lastShipped,
          lastStreamSequence: c.lastStreamSequence,
          unshippedRecords: c.unshippedRecords,
          unshippedBytes: c.unshippedBytes,
          retries: c.retries,
          state: c.state,
        };
        if (oldest !== undefined) {
          s.oldestUnshippedAgeMs = Math.max(0, Number((nowNs - oldest.timestampNs) / 1_000_000n));
        }
        if (c.lastAckAt !== undefined) s.lastAckAt = c.lastAckAt;
        if (c.error !== undefined) s.error = c.error.message;
        return s;
      }),
    };
  }

  /** Stops shipping (what is in flight is abandoned; the stream keeps what it acknowledged). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#unlisten?.();
      clearInterval(this.#holdTimer);
      this.#stop.abort();
      await Promise.all(this.#cores.map((c) => c.stop()));
      this.progress();
      // Closing the connection first ends a publish waiting on a server that is down.
      await this.#nc.close().catch(() => {});
      await this.#loops;
      // Nobody ships any more: the limit no longer holds appends (the marks still hold segments).
      for (const c of this.#cores) c.releaseHold();
      await this.#hooks.closed?.();
      this.progress();
    })();
    return this.#closing;
  }

  /** Closes the shipper (`close()`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Whether `source` is a WAL directory (a path or a file URL) rather than a manager; anything
 * else is a `TypeError`.
 */
export function isDirectorySource(source: ShipSource): source is string | URL {
  if (typeof source === "string" || source instanceof URL) return true;
  if (source === null || typeof source !== "object" || !("watch" in source)) {
    throw new TypeError("source must be a PerCoreWalManager or a WAL directory path");
  }
  return false;
}

/** How often the unshipped measure and limits are checked besides each acknowledgement. */
const HOLD_CHECK_MS = 50;

/** Creates the stream if absent, or adds this node's subjects to it. */
async function _ensureStream(jsm: JetStreamManager, s: ShipSettings): Promise<void> {
  const filter = `${s.subject}.${s.node}.>`;
  try {
    const info = await jsm.streams.info(s.stream);
    const subjects = info.config.subjects ?? [];
    const covered = subjects.some((x) => x === filter || x === `${s.subject}.>` || x === ">");
    if (!covered) {
      await jsm.streams.update(s.stream, { ...info.config, subjects: [...subjects, filter] });
    }
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound)) throw e;
    await jsm.streams.add(
      {
        name: s.stream,
        subjects: [filter],
        storage: "file",
        retention: "limits",
        discard: "old",
        duplicate_window: 120_000_000_000,
        ...s.streamConfig,
      } as Parameters<JetStreamManager["streams"]["add"]>[0],
    );
  }
}

/**
 * Each core's last sequence in the files now (the newest segment with a header that reads; a
 * record may still wait for its fdatasync): what a directory source has to ship.
 */
export async function walFilesEnd(config: PerCoreWalConfig): Promise<number[]> {
  const out: number[] = [];
  for (let c = 0; c < config.numCores; c++) {
    let end = 0;
    const segs = listCoreSegments(config, c);
    for (let i = segs.length - 1; i >= 0; i--) {
      try {
        using r = await PerCoreWalReader.open(segs[i].path, {
          maxRecordBytes: config.options.maxRecordBytes,
          isLastSegment: i === segs.length - 1,
          // Where the records end now: the newest segment may be being written.
          liveEnd: true,
        });
        if (r.header === undefined) continue;
        // Checked as the shipper's reads check them, without building entries.
        await r.skimToEnd();
        end = r.stats.lastSequence;
        break;
      } catch (e) {
        if (!(e instanceof PerCoreWalError)) throw e;
      }
    }
    out.push(end);
  }
  return out;
}

/** A stream of entries as a stream of arrays of one entry (cancelling it cancels `entries`). */
function _inArrays(entries: ReadableStream<PerCoreWalEntry>): ReadableStream<EntryBatch> {
  return entries.pipeThrough(
    new TransformStream<PerCoreWalEntry, EntryBatch>({
      transform: (e, controller) => controller.enqueue({ entries: [e] }),
    }),
  );
}

/**
 * The first sequence core `coreId`'s files hold: its oldest segment's header's, or undefined
 * while that segment has none (being started: a later segment's header never stands for it, as
 * in the watch's `#locate`).
 */
async function _firstHeld(config: PerCoreWalConfig, coreId: number): Promise<number | undefined> {
  for (const s of listCoreSegments(config, coreId)) {
    try {
      using r = await PerCoreWalReader.open(s.path, {
        maxRecordBytes: config.options.maxRecordBytes,
      });
      return r.header?.firstSequence;
    } catch (e) {
      // Retired meanwhile: the next one is the oldest.
      if (e instanceof PerCoreWalError && e.code === "SegmentNotFound") continue;
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
  }
  return undefined;
}

/**
 * The shipper itself, with the hooks that tie it to the WAL it ships (`ship_to_nats.ts`: the
 * marks, the unshipped limit): `shipToNats` is the public way in.
 */
export async function startShipper(
  source: ShipSource,
  options: ShipToNatsOptions,
  hooks: ShipperHooks,
): Promise<NatsShipper> {
  const s = shipSettings(options);
  const dir = isDirectorySource(source);
  const config = dir ? configFromDirectory(source) : undefined;
  const numCores = config?.numCores ?? (source as ShipManager).config.numCores;
  const open: OpenEntries = (coreId, from) => {
    const w: WatchOptions = { coreId };
    if (from !== undefined) w.from = { [coreId]: from };
    if (config !== undefined) return watchWalBatches(config, { ...w, intervalMs: s.intervalMs });
    // A manager's entries in arrays; another `ShipManager`'s one by one.
    const batches = batchWatchOf(source as ShipManager);
    return batches !== undefined ? batches(w) : _inArrays((source as ShipManager).watch(w));
  };
  s.signal?.throwIfAborted();
  const nc = await connect({
    ...s.connection,
    servers: s.servers,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  let shipper: NatsShipper | undefined;
  try {
    const jsm = await jetstreamManager(nc);
    await _ensureStream(jsm, s);
    const js = jetstream(nc);
    const stop = new AbortController();
    const cores = Array.from(
      { length: numCores },
      (_, c) =>
        new CoreShipper(c, s, { js, jsm }, open, hooks, stop.signal, () => shipper?.progress()),
    );
    const manager = config === undefined ? source as ShipManager : undefined;
    const durableNow = manager === undefined
      ? () => walFilesEnd(config!)
      : () => Promise.resolve(manager.syncedPositions().map((p) => p.sequence));
    for (const c of cores) {
      const meter = new UnshippedMeter(config ?? manager!.config, c.coreId);
      c.firstHeld = (coreId) => _firstHeld(config ?? manager!.config, coreId);
      if (manager !== undefined) {
        c.durableSequence = () => manager.syncedPositions()[c.coreId].sequence;
        c.useMeter(meter, () => manager.syncedPositions()[c.coreId]);
      } else {
        c.useMeter(meter, () => undefined);
      }
    }
    shipper = new NatsShipper(nc, cores, stop, durableNow, s.signal, hooks);
    return shipper;
  } catch (e) {
    await nc.close().catch(() => {});
    throw e;
  }
}
