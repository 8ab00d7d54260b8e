/**
 * The fold of replayed records into the state they leave behind (keys and values, and the offsets
 * and watermarks commit records carry): one rule for the checkpoint builder and for recovery, so
 * that a checkpoint and a replay of the same records agree.
 *
 * @module
 */

import type { CommitOperation, WalOperation } from "./types.ts";

/**
 * Folds `commit` into the running `offsets` (source name to latest offset) and `watermarks`
 * (source name to the latest watermark committed with it), and returns the latest watermark of
 * all: `commit`'s when it carries one, else `latestWatermark`. A later commit wins.
 */
export function foldCommit(
  commit: CommitOperation,
  offsets: Map<string, number>,
  watermarks: Map<string, number>,
  latestWatermark: number | undefined,
): number | undefined {
  for (const [name, offset] of commit.offsets) {
    offsets.set(name, offset);
    if (commit.watermark !== undefined) watermarks.set(name, commit.watermark);
  }
  return commit.watermark ?? latestWatermark;
}

/** The offsets and watermarks committed so far, as the commit records fold them. */
export interface Committed {
  /** Source name to its latest committed offset. */
  offsets: Map<string, number>;
  /** Source name to the latest watermark committed with it. */
  watermarks: Map<string, number>;
  /** The latest watermark of all. */
  watermark?: number;
}

/**
 * Applies one replayed operation to a key/value state: a put or a delete goes to `change` (a
 * delete with `undefined`), a commit folds into `committed`; other records change nothing. The
 * one replay rule of checkpoints and recovery.
 */
export function foldOperation(
  op: WalOperation,
  committed: Committed,
  change: (key: Uint8Array, value: Uint8Array | undefined) => void,
): void {
  if (op.type === "put") change(op.key, op.value);
  else if (op.type === "delete") change(op.key, undefined);
  else if (op.type === "commit") {
    committed.watermark = foldCommit(
      op,
      committed.offsets,
      committed.watermarks,
      committed.watermark,
    );
  }
}
