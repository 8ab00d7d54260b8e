/**
 * The fold of commit records into the offsets and watermarks they leave behind: one rule for
 * the checkpoint builder and for recovery, so that a checkpoint and a replay of the same records
 * agree on every source's offset.
 *
 * @module
 */

import type { CommitOperation } from "./types.ts";

/**
 * Folds `commit` into the running `offsets` (source name to latest offset) and `watermarks`
 * (source name to the latest watermark committed with it), and returns the latest watermark of
 * all: `commit`'s when it carries one, else `latestWatermark`. A later commit wins.
 */
export function foldCommit(
  commit: CommitOperation,
  offsets: Map<string, bigint>,
  watermarks: Map<string, bigint>,
  latestWatermark: bigint | undefined,
): bigint | undefined {
  for (const [name, offset] of commit.offsets) {
    offsets.set(name, offset);
    if (commit.watermark !== undefined) watermarks.set(name, commit.watermark);
  }
  return commit.watermark ?? latestWatermark;
}
