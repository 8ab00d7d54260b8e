/**
 * The validated operation behind each `append...` method: `CoreLog` (one core on this thread)
 * and `CoreWalWriter` (a producer in shared memory) offer the same append API and build their
 * operations here, so that their argument checking cannot drift apart. (`appendPut`, the hot
 * path, encodes its key and value directly, with the same `toKey`/`toBytes` checks.)
 *
 * @module
 */

import { normalizeOperation, toKey } from "./format.ts";
import type { Bytes, CommitOffsets, WalOperation } from "./types.ts";

/** A `delete` of `key`. */
export function deleteOperation(key: Bytes): WalOperation {
  return { type: "delete", key: toKey(key) };
}

/** A `checkpoint` marker. */
export function checkpointOperation(id: number): WalOperation {
  return normalizeOperation({ type: "checkpoint", id }, 0);
}

/** A `commit` of source offsets, with a watermark when given. */
export function commitOperation(offsets: CommitOffsets, watermark?: number): WalOperation {
  return normalizeOperation({ type: "commit", offsets, watermark }, 0);
}

/** An epoch barrier at `epoch`, or at `currentEpoch` when none is given. */
export function epochBarrierOperation(
  epoch: number | undefined,
  currentEpoch: number,
): WalOperation {
  return normalizeOperation({ type: "epochBarrier", epoch }, currentEpoch);
}
