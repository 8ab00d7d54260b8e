/**
 * `shipToNats`: the shipper of `shipper.ts` with what it owes the WAL it ships: a durable mark
 * per core in the WAL directory (`ShipMarks`: checkpoints never retire what was not shipped),
 * moved after each acknowledgement, and the unshipped limit (`holdAppends`).
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
 * .json`) and moves its mark after each acknowledgement: checkpoints never delete a segment
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
  const hooks: ShipperHooks = {};
  let marks: ShipMarks | undefined;
  let registered = false;
  const where = fromDir ? source : (source as ShipManager).config as PerCoreWalConfig;
  if (s.retain) {
    const name = `${s.stream}-${s.node}`;
    registered = ShipMarks.list(where).some((m) => m.name === name);
    marks = ShipMarks.open(where, name);
    const m = marks;
    hooks.onShipped = (coreId, last) => m.advance(coreId, last);
    hooks.closed = () => m.close();
  }
  if (dropOldest) {
    hooks.unshippedLimitRecords = limit;
    hooks.unshippedLimitBytes = limitBytes;
    hooks.dropUnshipped = await _dropper(source, s.onEvent, marks!);
  } else if (limited) {
    // Loaded only here: a shipper of another process's directory never loads the engine.
    const { holdAppends } = await import("../ship_hold.ts");
    const manager = source as PerCoreWalManager;
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
 * The `dropOldest` hook: the mark moves durably past the range given up, then an
 * `unshippedDropped` event goes to `onEvent` (the option, else the manager's), or, without
 * either, a line to stderr: a drop is never silent.
 */
async function _dropper(
  source: ShipSource,
  onEvent: WalEventHandler | undefined,
  marks: ShipMarks,
): Promise<NonNullable<ShipperHooks["dropUnshipped"]>> {
  let handler = onEvent;
  if (handler === undefined && !isDirectorySource(source)) {
    // Loaded only here: a shipper of another process's directory never loads the engine.
    const { _coreAccess } = await import("../manager.ts");
    handler = _coreAccess(source as PerCoreWalManager, 0).onEvent;
  }
  return async (coreId, from, to, bytes) => {
    await marks.advance(coreId, to);
    const event: WalEvent = {
      type: "unshippedDropped",
      coreId,
      shipper: marks.name,
      fromSequence: from,
      toSequence: to,
      bytes,
    };
    if (handler !== undefined) emitEvent(handler, event);
    else {
      console.error(
        `@percore/wal/ship: core ${coreId}: entries ${from} to ${to} (${bytes} bytes) dropped ` +
          `unshipped by shipper "${marks.name}" (onUnshippedLimit: "dropOldest"); the stream ` +
          `declares the gap`,
      );
    }
  };
}
