/**
 * `WalEvent`: what the WAL tells an application that asked (the `onEvent` option), so that a
 * fallback, a cut, a failure or backpressure is never silent. Nothing is printed or logged when no
 * `onEvent` is given.
 *
 * @module
 */

import type { PerCoreWalError } from "./errors.ts";

/**
 * Something the WAL did or saw, for the application's `onEvent` callback. A discriminated union
 * on `type`:
 *
 * - `"backendFallback"`: `backend: "auto"` chose the sync backend; `reason` says why (no
 *   `--allow-ffi`, no liburing, io_uring refused by the kernel, ...).
 * - `"tornTailCut"`: at open, core `coreId`'s segment `segment` (file `path`) held a torn write
 *   after its last valid record; the file was cut at `offset`, `bytes` bytes after it dropped
 *   (a preallocated segment counts its unwritten zeros too).
 * - `"segmentsPutAside"`: a crash tail spanning whole segments was renamed aside (never deleted);
 *   `paths` are the new names.
 * - `"coreFailed"`: core `coreId` failed (a write or fdatasync error): its appends and waits
 *   reject with `error` from now on.
 * - `"backpressureBegan"` / `"backpressureEnded"`: core `coreId`'s Worker holds `maxPendingBytes`
 *   not yet durable and stopped taking records from the producers' shared buffers until the
 *   disk caught up (producers then wait, or throw "Backpressure" on the main thread). Seen from
 *   the core's Worker: a producer thread that finds its own shared buffer full while the Worker
 *   is still taking records in is not reported. `cause` is `"maxPendingBytes"` then; it is
 *   `"unshippedLimit"` when an in-process shipper held the core's appends (`holdAppends`: appends
 *   throw "Backpressure" until it releases them), with the shipper's `reason` if it gave one.
 * - `"unshippedDropped"`: shipper `shipper` gave up core `coreId`'s entries `fromSequence` to
 *   `toSequence` unshipped (`dropUnshipped`, or `shipToNats`'s `onUnshippedLimit: "dropOldest"`,
 *   the opt-in mode of the unshipped limit): the next checkpoint may delete them, and they never
 *   reach the central stream (the shipper declares the gap there). `bytes`, when given, is what
 *   that range takes in the WAL (the unshipped measure of docs/SHIPPING.md). `reason`, when
 *   given, says why a range was given up that no limit dropped (a checkpoint retired it while
 *   the stream lacks it: docs/SHIPPING.md, "Across restarts").
 *
 * Sequences, segments, offsets and byte counts are `number`s.
 *
 * @example
 * ```ts
 * import { PerCoreWalManager, type WalEvent } from "@percore/wal";
 *
 * const onEvent = (event: WalEvent) => {
 *   if (event.type === "backendFallback") console.warn("WAL: sync backend,", event.reason);
 *   else if (event.type === "coreFailed") console.error("WAL core", event.coreId, event.error);
 *   else console.info("WAL:", event.type);
 * };
 * await using manager = await PerCoreWalManager.open("./data/wal", { cores: 2, onEvent });
 * ```
 */
export type WalEvent =
  | { type: "backendFallback"; reason: string }
  | {
    type: "tornTailCut";
    coreId: number;
    segment: number;
    path: string;
    offset: number;
    bytes: number;
  }
  | { type: "segmentsPutAside"; coreId: number; paths: string[] }
  | { type: "coreFailed"; coreId: number; error: PerCoreWalError }
  | {
    type: "backpressureBegan";
    coreId: number;
    cause: BackpressureCause;
    pendingBytes: number;
    reason?: string;
  }
  | { type: "backpressureEnded"; coreId: number; cause: BackpressureCause }
  | {
    type: "unshippedDropped";
    coreId: number;
    shipper: string;
    fromSequence: number;
    toSequence: number;
    bytes?: number;
    reason?: string;
  };

/**
 * Why appends of a core met backpressure: `"maxPendingBytes"` (the disk is behind) or
 * `"unshippedLimit"` (a shipper held them: its unshipped limit was reached, `holdAppends`).
 */
export type BackpressureCause = "maxPendingBytes" | "unshippedLimit";

/** The type of an `onEvent` option. */
export type WalEventHandler = (event: WalEvent) => void;

/**
 * Calls `onEvent` (if any) with `event`. An exception the callback throws never reaches the WAL:
 * it is caught and written to `console.error` (the application's own handler broke, and asked
 * for output by passing it), and the WAL goes on.
 */
export function emitEvent(onEvent: WalEventHandler | undefined, event: WalEvent): void {
  if (onEvent === undefined) return;
  try {
    onEvent(event);
  } catch (e) {
    console.error(`@percore/wal: onEvent threw while handling a "${event.type}" event:`, e);
  }
}

/** Throws `TypeError` unless `onEvent` is undefined or a function. */
export function checkEventHandler(onEvent: unknown): WalEventHandler | undefined {
  if (onEvent !== undefined && typeof onEvent !== "function") {
    throw new TypeError(`onEvent must be a function, got ${typeof onEvent}`);
  }
  return onEvent as WalEventHandler | undefined;
}
