/**
 * The unshipped limit's lever: an in-process shipper holds a core's appends (they throw
 * "Backpressure") while too much of it is unshipped, and releases them once it caught up.
 *
 * @module
 */

import { emitEvent } from "./events.ts";
import { _coreAccess, type PerCoreWalManager } from "./manager.ts";
import { CoreState, IntSlot, MetricSlot } from "./shared.ts";

/**
 * Holds (`held: true`) or releases (`false`) the appends of core `coreId` of `manager`: while
 * held, every append to that core, from any thread, throws `PerCoreWalError` "Backpressure"
 * naming the unshipped limit, and appends nothing (epoch barriers, which checkpoints write, still
 * pass). What was appended before stays and becomes durable as usual. Reports
 * `backpressureBegan` / `backpressureEnded` with cause `"unshippedLimit"` (and `reason`) to the
 * manager's `onEvent`. Returns whether the core's state changed (false: already so, or the core
 * failed or is closing, which a hold never hides).
 *
 * A function for the shipper's entry point rather than a method of the manager: the limit is a
 * shipper's policy, and the manager's API stays what an application calls.
 *
 * @example
 * ```ts
 * import { holdAppends, PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open("./data/wal", { cores: 2 });
 * holdAppends(manager, 0, true, "1 GiB unshipped");
 * try {
 *   manager.writer(0).appendPut("k", "v");
 * } catch (e) {
 *   console.log((e as Error).message); // ... reached the unshipped limit ...
 * }
 * holdAppends(manager, 0, false);
 * ```
 */
export function holdAppends(
  manager: PerCoreWalManager,
  coreId: number,
  held: boolean,
  reason?: string,
): boolean {
  if (typeof held !== "boolean") throw new TypeError(`held must be a boolean, got ${typeof held}`);
  if (reason !== undefined && typeof reason !== "string") {
    throw new TypeError(`reason must be a string, got ${typeof reason}`);
  }
  const { control, onEvent } = _coreAccess(manager, coreId);
  const [from, to] = held
    ? [CoreState.Running, CoreState.Held]
    : [CoreState.Held, CoreState.Running];
  if (Atomics.compareExchange(control.i32, IntSlot.STATE, from, to) !== from) return false;
  if (held) {
    emitEvent(onEvent, {
      type: "backpressureBegan",
      coreId,
      cause: "unshippedLimit",
      pendingBytes: control.metrics[MetricSlot.PENDING_BYTES],
      ...(reason === undefined ? {} : { reason }),
    });
  } else {
    emitEvent(onEvent, { type: "backpressureEnded", coreId, cause: "unshippedLimit" });
  }
  return true;
}

/** Whether core `coreId`'s appends are held by {@linkcode holdAppends}. */
export function appendsHeld(manager: PerCoreWalManager, coreId: number): boolean {
  return _coreAccess(manager, coreId).control.state === CoreState.Held;
}
