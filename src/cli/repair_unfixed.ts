/**
 * What `wal repair` leaves alone: the damage `wal verify` reports that the chosen recovery mode
 * does not act on, each with the reason, so that repair and verify agree (repair exits 1 while
 * such damage remains). The common case is damage before a checkpoint's position: recovery
 * starts at the checkpoint and never reads it, and cutting there would lose the records after it.
 *
 * @module
 */

import type { CheckpointMetadata } from "../checkpoint_store.ts";
import type { SegmentReport } from "../recovery_types.ts";
import { basename } from "./paths.ts";
import type { Damage, DirectoryScan } from "./scan.ts";

/** A damage that repair does not fix, and why. */
export interface UnfixedDamage extends Damage {
  /** The core, for damage in a segment. */
  coreId?: number;
  /** Why repair leaves it. */
  why: string;
}

/**
 * The damage of `scan` that the plan (`report`, from a read-only recovery in `mode` that used
 * `checkpoint`) does not act on, each with why.
 */
export function unfixedDamage(
  scan: DirectoryScan,
  report: SegmentReport[],
  mode: string,
  checkpoint: CheckpointMetadata | undefined,
): UnfixedDamage[] {
  const acted = new Set(report.filter((l) => l.action !== "none").map((l) => l.path));
  const segments = scan.cores.flat();
  const out: UnfixedDamage[] = [];
  for (const d of scan.damage) {
    if (acted.has(d.path)) continue;
    const s = segments.find((x) => x.path === d.path);
    if (s === undefined) {
      const isCheckpoint = scan.checkpoints.some((k) => k.path === d.path);
      out.push({
        ...d,
        why: isCheckpoint
          ? "a damaged checkpoint: recovery skips it for an older one; repair does not change " +
            "checkpoints (remove it by hand once a newer checkpoint exists)"
          : `recovery in mode ${mode} does not act on it`,
      });
      continue;
    }
    const p = checkpoint?.walPositions.find((x) => x.coreId === s.coreId);
    const before = p !== undefined &&
      (s.index < p.segment || (s.index === p.segment && d.offset < p.offset));
    out.push({
      ...d,
      coreId: s.coreId,
      why: before
        ? `before checkpoint ${checkpoint!.id}'s position on core ${s.coreId} (segment ` +
          `${p!.segment}, offset ${p!.offset}): recovery starts there and never reads it, and ` +
          "cutting the log there would lose the records after it; dump and merge of the whole " +
          "log stop at it"
        : `recovery in mode ${mode} does not act on it`,
    });
  }
  return out;
}

/** One unfixed damage as the line repair prints. */
export function unfixedText(d: UnfixedDamage): string {
  const core = d.coreId === undefined ? "" : `  core ${d.coreId}`;
  return `${basename(d.path)}${core}  ${d.code} at offset ${d.offset}: ${d.reason}  ` +
    `not repaired: ${d.why}`;
}
