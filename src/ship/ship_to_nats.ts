/**
 * `shipToNats`: the shipper of `shipper.ts` with what it owes the WAL it ships: a durable mark
 * per core in the WAL directory (`ShipMarks`: checkpoints never retire what was not shipped),
 * moved to the latest acknowledgement at most every 100 ms and at close, and the unshipped limit
 * (`holdAppends`).
 *
 * @module
 */

import type { PerCoreWalConfig } from "../config.ts";
import type { PerCoreWalManager } from "../manager.ts";
import { emitEvent, type WalEvent, type WalEventHandler } from "../events.ts";
import { ShipMarks } from "../ship_marks.ts";
import type { ShipperHooks } from "./core_shipper.ts";
import { shipSettings, type ShipToNatsOptions } from "./options.ts";
import {
  isDirectorySource,
  type NatsShipper,
  type ShipManager,
  type ShipSource,
  startShipper,
} from "./shipper.ts";

/**
 * Ships the durable entries of a WAL into a NATS JetStream stream, exactly once and in order per
 * core, and goes on as entries become durable until closed (docs/SHIPPING.md).
 *
 * `source` is an open `PerCoreWalManager` of this process, or the path of a WAL directory that
 * another process writes (only what an fdatasync made durable leaves the node, as with
 * `watchWal`). Each core's entries go to the subject `<subject>.<node>.<core>` in messages of
 * consecutive entries (an atomic batch whole), one publish in flight per core, each with a
 * deterministic `Nats-Msg-Id` (`<node>.<core>.<first>-<last>`) and expecting the stream sequence
 * of the core's previous message. On start, and after any refusal, error or reconnect, the
 * shipper reads each core's last message in the stream and resumes after it. Outages are retried
 * with a capped backoff, reported by `status()`.
 *
 * Unless `retain: false`, the shipper registers in the WAL directory (`shippers/<stream>-<node>
 * .json`) and moves its mark to the latest acknowledgement (at most every 100 ms, and at close):
 * checkpoints never delete a segment
 * holding an entry it has not shipped, also across restarts, until the registration is removed
 * (`ShipMarks.remove`). With `maxUnshippedRecords` or `maxUnshippedBytes`, a core's appends
 * throw "Backpressure" while more entries or bytes than that are unshipped (a manager source
 * only).
 *
 * The stream is created if absent: file storage, limits retention, subjects
 * `<subject>.<node>.>`, duplicate window 2 minutes, and `streamConfig` on top.
 *
 * @example
 * ```ts ignore
 * import { PerCoreWalManager } from "@percore/wal";
 * import { shipToNats } from "@percore/wal/ship";
 *
 * await using manager = await PerCoreWalManager.open("./data/wal", { cores: 2 });
 * await using shipper = await shipToNats(manager, { servers: "nats://127.0.0.1:4222", node: "edge-1" });
 * manager.writer(0).append({ type: "put", key: "k", value: "v" });
 * await manager.syncAll();
 * await shipper.drained();
 * ```
 */
export async function shipToNats(
  source: ShipSource,
  options: ShipToNatsOptions,
): Promise<NatsShipper> {
  const s = shipSettings(options);
  const fromDir = isDirectorySource(source);
  const limit = s.maxUnshippedRecords;
  const limitBytes = s.maxUnshippedBytes;
  const limited = limit !== undefined || limitBytes !== undefined;
  const dropOldest = s.onUnshippedLimit === "dropOldest";
  if (dropOldest && (!limited || !s.retain)) {
    throw new TypeError(
      'onUnshippedLimit: "dropOldest" needs maxUnshippedBytes or maxUnshippedRecords, and ' +
        "retain (the mark it moves past what it gives up)",
    );
  }
  if (limited && fromDir && !dropOldest) {
    const name = limit !== undefined ? "maxUnshippedRecords" : "maxUnshippedBytes";
    throw new TypeError(
      `${name} needs the PerCoreWalManager of this process as the source: another ` +
        "process's appends cannot be held from here",
    );
  }
  // Checked before the marks are opened: a refused call registers no shipper (its marks would
  // hold the WAL's segments for nobody).
  let holdsAppendsOf: PerCoreWalManager | undefined;
  if (limited && !fromDir && !dropOldest) {
    // Loaded only here: a shipper of another process's directory never loads the engine.
    const { PerCoreWalManager } = await import("../manager.ts");
    if (!(source instanceof PerCoreWalManager)) {
      throw new TypeError(
        "maxUnshippedRecords and maxUnshippedBytes hold appends: they need a PerCoreWalManager " +
          "as the source, not another ShipManager",
      );
    }
    holdsAppendsOf = source;
  }
  const hooks: ShipperHooks = {};
  let marks: ShipMarks | undefined;
  let registered = false;
  const where = fromDir ? source : (source as ShipManager).config as PerCoreWalConfig;
  if (s.retain) {
    const name = `${s.stream}-${s.node}`;
    registered = ShipMarks.list(where).some((m) => m.name === name);
    marks = ShipMarks.open(where, name);
    const pacer = new MarksPacer(marks);
    hooks.onShipped = (coreId, last) => pacer.advance(coreId, last);
    hooks.closed = () => pacer.close();
    hooks.marked = () => pacer.written();
    const m = marks;
    // The gaps given up and not yet declared in the stream are kept with the marks: a shipper
    // that starts again declares them first (docs/SHIPPING.md, "Across restarts").
    hooks.initialMark = (c) => {
      const g = m.pendingGap(c);
      return {
        shipped: m.shipped(c),
        gap: g === undefined ? undefined : { from: g.fromSequence, to: g.toSequence },
      };
    };
    hooks.gapShipped = (c, sequence) => void m.clearGap(c, sequence).catch(() => {});
    hooks.dropUnshipped = await _dropper(source, s.onEvent, marks);
  }
  if (dropOldest) {
    hooks.unshippedLimitRecords = limit;
    hooks.unshippedLimitBytes = limitBytes;
    hooks.dropOldest = true;
  } else if (limited) {
    // Loaded only here: a shipper of another process's directory never loads the engine.
    const { holdAppends } = await import("../ship_hold.ts");
    const manager = holdsAppendsOf!;
    hooks.unshippedLimitRecords = limit;
    hooks.unshippedLimitBytes = limitBytes;
    const what = [
      ...(limit === undefined ? [] : [`${limit} entries`]),
      ...(limitBytes === undefined ? [] : [`${limitBytes} bytes`]),
    ].join(" or ");
    hooks.holdAppends = (coreId, held) => {
      holdAppends(manager, coreId, held, `more than ${what} not shipped to stream "${s.stream}"`);
    };
  }
  try {
    return await startShipper(source, options, hooks);
  } catch (e) {
    // A registration this call made for a shipper that never started would hold the WAL's
    // segments for nobody.
    await marks?.close();
    if (marks !== undefined && !registered) ShipMarks.remove(where, marks.name);
    throw e;
  }
}

/**
 * The `dropUnshipped` hook (`dropOldest`, and ranges lost by the WAL or the stream): the mark
 * moves durably past the range given up, the range recorded as a gap to declare in the same
 * write, then an `unshippedDropped` event goes to `onEvent` (the option, else the manager's),
 * or, without either, a line to stderr: a drop is never silent.
 */
async function _dropper(
  source: ShipSource,
  onEvent: WalEventHandler | undefined,
  marks: ShipMarks,
): Promise<NonNullable<ShipperHooks["dropUnshipped"]>> {
  let handler = onEvent;
  if (handler === undefined && !isDirectorySource(source)) {
    // Loaded only here: a shipper of another process's directory never loads the engine.
    const { _coreAccess, PerCoreWalManager } = await import("../manager.ts");
    // The manager's own handler; another ShipManager has none to give (stderr then).
    if (source instanceof PerCoreWalManager) handler = _coreAccess(source, 0).onEvent;
  }
  return async (coreId, from, to, bytes, reason) => {
    await marks.declareGap(coreId, from, to);
    const event: WalEvent = {
      type: "unshippedDropped",
      coreId,
      shipper: marks.name,
      fromSequence: from,
      toSequence: to,
    };
    if (bytes !== undefined) event.bytes = bytes;
    if (reason !== undefined) event.reason = reason;
    if (handler !== undefined) emitEvent(handler, event);
    else {
      const size = bytes === undefined ? "" : ` (${bytes} bytes)`;
      const why = reason ?? 'onUnshippedLimit: "dropOldest"';
      console.error(
        `@percore/wal/ship: core ${coreId}: entries ${from} to ${to}${size} dropped ` +
          `unshipped by shipper "${marks.name}" (${why}); the stream declares the gap`,
      );
    }
  };
}

/**
 * The least time between two writes of the marks file while shipping. Each write is a file and
 * a directory fsync: after every acknowledgement they competed with the WAL's own fdatasyncs
 * (and cost a fifth to a third of the shipping rate). A mark written late only holds segments
 * longer; closing writes the last one.
 */
const MARKS_INTERVAL_MS = 100;

/** Moves the marks to the latest acknowledgements, at most once per `MARKS_INTERVAL_MS`. */
class MarksPacer {
  readonly #marks: ShipMarks;
  readonly #latest = new Map<number, number>();
  /** The highest sequence asked per core, written or not. */
  readonly #asked = new Map<number, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastWrite = -Infinity;

  constructor(marks: ShipMarks) {
    this.#marks = marks;
  }

  /** Core `coreId` is acknowledged through `sequence`: its mark moves by the next write. */
  advance(coreId: number, sequence: number): void {
    this.#latest.set(coreId, Math.max(sequence, this.#latest.get(coreId) ?? 0));
    this.#asked.set(coreId, Math.max(sequence, this.#asked.get(coreId) ?? 0));
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#lastWrite + MARKS_INTERVAL_MS - performance.now());
    this.#timer = setTimeout(() => this.#flush(), wait);
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lastWrite = performance.now();
    // A failed write is retried by the next one (ShipMarks); a mark behind holds more, never less.
    for (const [c, seq] of this.#latest) this.#marks.advance(c, seq).catch(() => {});
    this.#latest.clear();
  }

  /** Writes what is pending now; resolves once the file holds every sequence asked so far. */
  async written(): Promise<void> {
    if (this.#timer !== undefined) this.#flush();
    // A failed write leaves the mark behind: it holds more, never less.
    await Promise.all(
      [...this.#asked].map(([c, seq]) => this.#marks.advance(c, seq).catch(() => {})),
    );
  }

  /** Writes the latest marks and closes the file. */
  async close(): Promise<void> {
    this.#flush();
    await this.#marks.close();
  }
}
