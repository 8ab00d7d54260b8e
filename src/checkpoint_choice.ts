/**
 * Which checkpoint a WAL builds on: its own, never another WAL's. Recovery, the checkpoint
 * coordinator and the CLI ask {@linkcode chooseWalCheckpoint}; the manager's open asks
 * {@linkcode newestOwnCheckpoint}. The rules are FORMAT.md section 11: a checkpoint names its WAL
 * (`walId`); one of another WAL is "foreign" and ignored; a legacy one (no `walId`) is a candidate
 * in the checkpoint directory, where recovery checks its barriers, and in the old default beside
 * the WAL directory (the migration) only if its barriers are found in this WAL's log.
 *
 * @module
 */

import {
  type CheckpointMetadata,
  type CheckpointPosition,
  type CheckpointReport,
  chooseCheckpoint,
  defaultCheckpointDir,
  legacyCheckpointDir,
  listValidCheckpoints,
} from "./checkpoint_store.ts";
import type { PerCoreWalConfig } from "./config.ts";
import { PerCoreWalError } from "./errors.ts";
import { CoreCursor } from "./merge.ts";

/** The checkpoint chosen, what was found of the others, and the directory it was found in. */
export interface WalCheckpointChoice {
  /** The checkpoint to build on, if any. */
  checkpoint?: CheckpointMetadata;
  /** Every checkpoint considered, newest first (the default directory's before the old one's). */
  checkpointReport: CheckpointReport[];
}

/**
 * The newest valid checkpoint of the WAL `walId` (or a legacy one): in `checkpointDir` when it
 * is given (false: none), else in the default directory (`<walDir>/checkpoints`) and, when that
 * holds none of this WAL, in the old default beside the WAL directory (the migration: read in
 * place, never moved).
 */
export async function chooseWalCheckpoint(
  config: PerCoreWalConfig,
  walId: string | undefined,
  checkpointDir: string | false | undefined,
): Promise<WalCheckpointChoice> {
  if (checkpointDir === false) return { checkpointReport: [] };
  // A WAL without an id (never opened since ids) can own legacy checkpoints only.
  const id = walId ?? null;
  if (checkpointDir !== undefined) return chooseCheckpoint(checkpointDir, { walId: id });
  const current = chooseCheckpoint(defaultCheckpointDir(config.baseDir), { walId: id });
  if (current.checkpoint !== undefined) return current;
  const old = await _chooseLegacyDefault(config, walId);
  return {
    checkpoint: old.checkpoint,
    checkpointReport: [...current.checkpointReport, ...old.checkpointReport],
  };
}

/**
 * The old default directory's newest checkpoint of this WAL, or legacy one whose barriers are
 * in this WAL's log (another WAL's legacy checkpoint, in the directory the WALs of one parent
 * shared, is reported "foreign").
 */
async function _chooseLegacyDefault(
  config: PerCoreWalConfig,
  walId: string | undefined,
): Promise<WalCheckpointChoice> {
  const dir = legacyCheckpointDir(config.baseDir);
  const exclude = new Map<string, string>();
  for (;;) {
    const choice = chooseCheckpoint(dir, { walId: walId ?? null, exclude });
    const m = choice.checkpoint;
    if (m === undefined || m.walId !== undefined) return choice;
    const why = await legacyMismatch(config, m);
    if (why === undefined) return choice;
    exclude.set(m.path, `legacy checkpoint (no walId) in the old default directory: ${why}`);
  }
}

/**
 * The newest checkpoint of the WAL `walId` whose manifest and file sizes are valid: what `open()`
 * checks the segments against. In `checkpointDir` when it is given (as
 * {@linkcode chooseWalCheckpoint} looks there alone), else in the default directory (or, when it
 * holds none of this WAL, in the old default beside it). Legacy checkpoints (no walId) are not
 * counted: nothing proves they are this WAL's.
 */
export function newestOwnCheckpoint(
  walDir: string,
  walId: string,
  checkpointDir?: string,
): CheckpointMetadata | undefined {
  const dirs = checkpointDir !== undefined
    ? [checkpointDir]
    : [defaultCheckpointDir(walDir), legacyCheckpointDir(walDir)];
  for (const dir of dirs) {
    const own = listValidCheckpoints(dir).filter((m) => m.walId === walId);
    if (own.length > 0) return own.at(-1);
  }
  return undefined;
}

/**
 * Why a checkpoint's barriers are not in this WAL's log, or undefined when, on every core, the
 * first record at its position is the barrier of its sequence and of a later epoch (what
 * recovery's own barrier check requires).
 */
export async function legacyMismatch(
  config: PerCoreWalConfig,
  m: CheckpointMetadata,
): Promise<string | undefined> {
  if (m.walPositions.length > config.numCores) {
    return `it names ${m.walPositions.length} cores, this WAL has ${config.numCores}`;
  }
  for (const at of m.walPositions) {
    const why = await barrierMismatch(config, at, m.epoch);
    if (why !== undefined) return why;
  }
  return undefined;
}

/**
 * Why core `at.coreId`'s log does not go on from a checkpoint of epoch `epoch` at `at`, or
 * undefined when the first record there is the barrier of `at.sequence` and of a later epoch.
 */
export async function barrierMismatch(
  config: PerCoreWalConfig,
  at: CheckpointPosition,
  epoch: number,
): Promise<string | undefined> {
  let cursor: CoreCursor | undefined;
  try {
    cursor = await CoreCursor.open(config, at.coreId, {
      start: { segment: at.segment, offset: at.offset, sequence: at.sequence },
      onTorn: "stop",
      onCorrupt: "stop",
      onGap: "stop",
      batch: 1,
    });
    const first = cursor.entry;
    const op = first?.operation;
    if (
      first !== undefined && first.sequence === at.sequence && op?.type === "epochBarrier" &&
      op.epoch > epoch
    ) return undefined;
    return `core ${at.coreId}'s log holds no barrier of sequence ${at.sequence} at segment ` +
      `${at.segment} offset ${at.offset}`;
  } catch (e) {
    // A log that cannot be read there is not the log the checkpoint names; a bug is a bug.
    if (!(e instanceof PerCoreWalError)) throw e;
    return `core ${at.coreId}'s log cannot be read at its barrier: ${e.message}`;
  } finally {
    await cursor?.closeAsync();
  }
}
