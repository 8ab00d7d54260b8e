/**
 * The way back: the entries of a shipped stream, decoded and verified (`readNatsStream`), and
 * the key/value state rebuilt from them as `recoverPerCore` rebuilds it from a directory
 * (`recoverFromNats`).
 *
 * @module
 */

import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { type Committed, foldOperation } from "../commit_fold.ts";
import { PerCoreWalError } from "../errors.ts";
import { compareEntries } from "../merge_stream.ts";
import { checkOptionKeys, OPTION_KEYS } from "../option_keys.ts";
import { RecoveredState } from "../recovery_types.ts";
import { keyString } from "../state_file.ts";
import type { PerCoreWalEntry } from "../types.ts";
import { decodeFrame } from "./frame.ts";

/**
 * Options of {@linkcode readNatsStream} and {@linkcode recoverFromNats}.
 *
 * @example
 * ```ts
 * import type { ReadNatsStreamOptions } from "@percore/wal/ship";
 *
 * const options: ReadNatsStreamOptions = { servers: "nats://127.0.0.1:4222", node: "edge-7" };
 * ```
 */
export interface ReadNatsStreamOptions {
  /** The NATS server URL(s). */
  servers: string | string[];
  /** Only this node's subjects. Default: every node's. */
  node?: string;
  /** The stream. Default `"WAL"`. */
  stream?: string;
  /** The subject prefix. Default `"wal"`. */
  subject?: string;
  /**
   * Accept a core whose first message in the stream starts after sequence 1 (the WAL had
   * retired segments before shipping began, or the stream's limits dropped old messages).
   * Default false: such a core is refused, naming its first sequence.
   */
  allowMissingStart?: boolean;
  /**
   * Told of each declared gap (a gap marker: entries the shipper gave up unshipped with
   * `onUnshippedLimit: "dropOldest"`), in stream order, before the entries after it are handed
   * out. A gap that is not declared is refused whatever this says.
   */
  onGap?: (gap: ShippedGap) => void;
  /** Passed to the NATS client's `connect` (auth, TLS). */
  connection?: Record<string, unknown>;
  /** Stops the reading: the iteration rejects with the signal's reason. */
  signal?: AbortSignal;
}

// Every option has its key in the table of src/option_keys.ts (this fails type checking if not).
const _KEYS: { readonly [K in keyof Required<ReadNatsStreamOptions>]: true } =
  OPTION_KEYS.ReadNatsStreamOptions;

/**
 * An entry read back from the stream, with the node that shipped it.
 *
 * @example
 * ```ts
 * import type { ShippedEntry } from "@percore/wal/ship";
 *
 * function where(e: ShippedEntry): string {
 *   return `${e.node}/${e.coreId}/${e.sequence}`;
 * }
 * ```
 */
export interface ShippedEntry extends PerCoreWalEntry {
  /** The node id of the subject it came from. */
  node: string;
  /** Its message's sequence in the stream. */
  streamSequence: number;
}

/**
 * A declared gap in a shipped stream: core `coreId` of `node` gave up sequences `fromSequence`
 * to `toSequence` unshipped (docs/SHIPPING.md, "Dropping the oldest").
 *
 * @example
 * ```ts
 * import type { ShippedGap } from "@percore/wal/ship";
 *
 * const say = (g: ShippedGap) =>
 *   console.warn(`${g.node}/${g.coreId}: ${g.fromSequence}..${g.toSequence} were dropped`);
 * ```
 */
export interface ShippedGap {
  /** The node id of the subject. */
  node: string;
  /** The core. */
  coreId: number;
  /** The first sequence given up. */
  fromSequence: number;
  /** The last sequence given up. */
  toSequence: number;
  /** The stream sequence of the gap marker. */
  streamSequence: number;
}

interface _Ctx {
  nc: NatsConnection;
  jsm: JetStreamManager;
  stream: string;
  subject: string;
  allowMissingStart: boolean;
  onGap?: (gap: ShippedGap) => void;
  signal?: AbortSignal;
}

async function _open(options: ReadNatsStreamOptions): Promise<_Ctx & { filter: string }> {
  if (options === null || typeof options !== "object") {
    throw new TypeError("options must be an object");
  }
  checkOptionKeys(options, "ReadNatsStreamOptions");
  const servers = typeof options.servers === "string" ? [options.servers] : options.servers;
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new TypeError("servers must be a URL string or a non-empty array of them");
  }
  const stream = options.stream ?? "WAL";
  const subject = options.subject ?? "wal";
  if (options.onGap !== undefined && typeof options.onGap !== "function") {
    throw new TypeError(`onGap must be a function, got ${typeof options.onGap}`);
  }
  options.signal?.throwIfAborted();
  const nc = await connect({ ...options.connection, servers });
  try {
    const jsm = await jetstreamManager(nc);
    return {
      nc,
      jsm,
      stream,
      subject,
      allowMissingStart: options.allowMissingStart === true,
      onGap: options.onGap,
      signal: options.signal,
      filter: `${subject}.${options.node ?? "*"}.*`,
    };
  } catch (e) {
    await nc.close();
    throw e;
  }
}

/** The entries of messages on `filter` from stream sequence `from` on, verified per subject. */
async function* _messages(
  ctx: _Ctx,
  filter: string,
  lastSeq: number,
): AsyncGenerator<ShippedEntry[]> {
  const last = new Map<string, number>();
  let seq = 0;
  while (seq < lastSeq) {
    ctx.signal?.throwIfAborted();
    const m = await ctx.jsm.streams.getMessage(
      ctx.stream,
      { seq: seq + 1, next_by_subj: filter } as unknown as { seq: number },
    );
    if (m === null || m.seq > lastSeq) return;
    seq = m.seq;
    const where = `stream "${ctx.stream}" message ${m.seq} on subject "${m.subject}"`;
    const tokens = m.subject.split(".");
    const node = tokens[tokens.length - 2];
    const core = Number(tokens[tokens.length - 1]);
    let f;
    try {
      f = decodeFrame(m.data);
    } catch (e) {
      const code = e instanceof PerCoreWalError ? e.code : "Corrupted";
      throw new PerCoreWalError(code, `Cannot read ${where}: ${(e as Error).message}`, {
        coreId: Number.isInteger(core) ? core : undefined,
        cause: e,
      });
    }
    if (f.coreId !== core) {
      throw new PerCoreWalError("Corrupted", `Cannot read ${where}: it holds core ${f.coreId}`, {
        coreId: core,
      });
    }
    const prev = last.get(m.subject);
    if (prev === undefined) {
      if (f.firstSequence !== 1 && !ctx.allowMissingStart) {
        throw new PerCoreWalError(
          "Corrupted",
          `Cannot read ${where}: core ${core} of node "${node}" starts at sequence ` +
            `${f.firstSequence}, not 1 (allowMissingStart accepts it)`,
          { coreId: core },
        );
      }
    } else if (f.firstSequence !== prev + 1) {
      const what = f.firstSequence <= prev ? "a duplicate" : "a gap";
      throw new PerCoreWalError(
        "Corrupted",
        `Cannot read ${where}: ${what}: sequences ${f.firstSequence} to ${f.lastSequence} ` +
          `follow sequence ${prev}`,
        { coreId: core },
      );
    }
    last.set(m.subject, f.lastSequence);
    if (f.gap === true) {
      ctx.onGap?.({
        node,
        coreId: core,
        fromSequence: f.firstSequence,
        toSequence: f.lastSequence,
        streamSequence: m.seq,
      });
      continue;
    }
    yield f.entries.map((e) => ({ ...e, node, streamSequence: m.seq }));
  }
}

/**
 * The entries of a shipped stream (one node or all), decoded and verified: each message's
 * checksum and records, and per subject (node and core) sequences from 1 (see
 * `allowMissingStart`) without gap or duplicate, but for the gaps the shipper declared (gap
 * markers, `onUnshippedLimit: "dropOldest"`), which are accepted and told to `onGap`. Each core's entries come in order; across
 * subjects, in stream order. Reads what the stream holds when the iteration starts. Throws
 * `PerCoreWalError` naming the stream sequence and subject of a corrupted message, a gap or a
 * duplicate.
 *
 * @example
 * ```ts ignore
 * import { readNatsStream } from "@percore/wal/ship";
 *
 * for await (const e of readNatsStream({ servers: "nats://127.0.0.1:4222", node: "edge-7" })) {
 *   console.log(e.node, e.coreId, e.sequence, e.operation.type);
 * }
 * ```
 */
export async function* readNatsStream(
  options: ReadNatsStreamOptions,
): AsyncGenerator<ShippedEntry> {
  const ctx = await _open(options);
  try {
    const info = await ctx.jsm.streams.info(ctx.stream);
    for await (const run of _messages(ctx, ctx.filter, info.state.last_seq)) yield* run;
  } finally {
    await ctx.nc.close();
  }
}

/**
 * What {@linkcode recoverFromNats} rebuilt.
 *
 * @example
 * ```ts ignore
 * import { recoverFromNats } from "@percore/wal/ship";
 *
 * const r = await recoverFromNats({ servers: "nats://127.0.0.1:4222", node: "edge-7" });
 * console.log(r.state.size, r.offsets, r.lastSequences);
 * ```
 */
export interface NatsRecoveredState {
  /** The key/value state. */
  state: RecoveredState;
  /** Latest committed offset per source. */
  offsets: Map<string, number>;
  /** The latest watermark committed with each source. */
  watermarks: Map<string, number>;
  /** The latest committed watermark. */
  watermark?: number;
  /** The last sequence read per subject (`<subject>.<node>.<core>`). */
  lastSequences: Map<string, number>;
  /** Entries replayed. */
  entriesReplayed: number;
  /** Largest epoch seen. */
  finalEpoch: number;
  /**
   * The declared gaps met (entries a shipper gave up unshipped), by subject then sequence: the
   * state lacks what they held. Empty when the stream has none.
   */
  gaps: ShippedGap[];
}

/** One subject read message by message: its current entry. */
class _SubjectCursor {
  entry: ShippedEntry | undefined;
  readonly subject: string;
  #run: ShippedEntry[] = [];
  #at = 0;
  readonly #it: AsyncGenerator<ShippedEntry[]>;

  constructor(subject: string, it: AsyncGenerator<ShippedEntry[]>) {
    this.subject = subject;
    this.#it = it;
  }

  async advance(): Promise<void> {
    while (this.#at >= this.#run.length) {
      const r = await this.#it.next();
      if (r.done) {
        this.entry = undefined;
        return;
      }
      this.#run = r.value;
      this.#at = 0;
    }
    this.entry = this.#run[this.#at++];
  }
}

/**
 * Rebuilds the key/value state (and committed offsets and watermarks) from a shipped stream the
 * way `recoverPerCore` does from a WAL directory with no checkpoint: every entry, merged by
 * `(epoch, timestampNs, coreId, sequence)` (then node), folded by the same rule. Memory holds one
 * message per subject, and the state. Verifies as {@linkcode readNatsStream} does.
 *
 * @example
 * ```ts ignore
 * import { recoverFromNats } from "@percore/wal/ship";
 *
 * const r = await recoverFromNats({ servers: "nats://127.0.0.1:4222", node: "edge-7" });
 * for (const [key, value] of r.state) console.log(key, value);
 * ```
 */
export async function recoverFromNats(options: ReadNatsStreamOptions): Promise<NatsRecoveredState> {
  const ctx = await _open(options);
  const gaps: ShippedGap[] = [];
  const told = ctx.onGap;
  ctx.onGap = (g) => {
    gaps.push(g);
    told?.(g);
  };
  try {
    const info = await ctx.jsm.streams.info(ctx.stream, { subjects_filter: ctx.filter });
    const subjects = Object.keys(info.state.subjects ?? {}).sort();
    const lastSeq = info.state.last_seq;
    const cursors = subjects.map((s) => new _SubjectCursor(s, _messages(ctx, s, lastSeq)));
    for (const c of cursors) await c.advance();
    const overlay = new Map<string, { key: Uint8Array; value: Uint8Array | undefined }>();
    const committed: Committed = { offsets: new Map(), watermarks: new Map() };
    const change = (key: Uint8Array, value: Uint8Array | undefined) =>
      overlay.set(keyString(key), { key: key.slice(), value: value?.slice() });
    const lastSequences = new Map<string, number>();
    let replayed = 0;
    let finalEpoch = 0;
    while (true) {
      // Few subjects (nodes times cores): the smallest current entry by a scan.
      let min: _SubjectCursor | undefined;
      for (const c of cursors) {
        if (c.entry === undefined) continue;
        if (min === undefined || _before(c.entry, min.entry!)) min = c;
      }
      if (min === undefined) break;
      const e = min.entry!;
      replayed++;
      if (e.epoch > finalEpoch) finalEpoch = e.epoch;
      lastSequences.set(min.subject, e.sequence);
      foldOperation(e.operation, committed, change);
      await min.advance();
    }
    const out: NatsRecoveredState = {
      state: new RecoveredState(undefined, overlay),
      offsets: committed.offsets,
      watermarks: committed.watermarks,
      lastSequences,
      entriesReplayed: replayed,
      finalEpoch,
      gaps: gaps.sort((a, b) =>
        a.node < b.node
          ? -1
          : a.node > b.node
          ? 1
          : a.coreId - b.coreId || a.fromSequence - b.fromSequence
      ),
    };
    if (committed.watermark !== undefined) out.watermark = committed.watermark;
    return out;
  } finally {
    await ctx.nc.close();
  }
}

function _before(a: ShippedEntry, b: ShippedEntry): boolean {
  const c = compareEntries(a, b);
  return c !== 0 ? c < 0 : a.node < b.node;
}
