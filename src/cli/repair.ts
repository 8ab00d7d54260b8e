/**
 * `wal repair`: shows what recovery in a mode would do to the files (a read-only recovery),
 * then does it under the directory lock (`repairAllSegments`). Refused while a manager holds
 * the directory.
 *
 * @module
 */

import type { PerCoreWalConfig } from "../config.ts";
import { PerCoreWalError } from "../errors.ts";
import { lstatIfExists } from "../fs.ts";
import { lockWalDirectory, unlockWalDirectory } from "../lock.ts";
import { PerCoreRecoveryManager } from "../recovery.ts";
import type { RecoveryMode, SegmentReport } from "../recovery_types.ts";
import { listCoreSegments } from "../segment_files.ts";
import { jsonLine } from "./display.ts";
import { basename } from "./paths.ts";
import { unfixedDamage, unfixedText } from "./repair_unfixed.ts";
import { scanDirectory } from "./scan.ts";

/** The modes `repair` accepts. */
export const REPAIR_MODES = ["tolerateTornTail", "pointInTime", "salvage"] as const;

/** One of {@linkcode REPAIR_MODES}. */
export type RepairMode = typeof REPAIR_MODES[number] & RecoveryMode;

/** Options of `repair`. */
export interface RepairOptions {
  /** The recovery mode whose decisions are applied. */
  mode: RepairMode;
  /** Show what would be done; change nothing. */
  dryRun: boolean;
  /** One JSON object per line. */
  json: boolean;
  /** Where the checkpoints are. */
  checkpointDir?: string;
}

function _line(l: SegmentReport, json: boolean, phase: "plan" | "done"): string {
  if (json) return jsonLine({ kind: "repair", phase, ...l });
  const where = l.offset === undefined ? "" : ` at offset ${l.offset}`;
  const why = l.reason === undefined ? "" : ` (${l.reason})`;
  const verb = phase === "plan" ? "would be" : l.applied ? "done:" : "not applied:";
  return `${basename(l.path)}  core ${l.coreId}  ${l.status}${where}${why}  ${verb} ${l.action}`;
}

/** Every core's segment files and their sizes. */
function _segmentSizes(config: PerCoreWalConfig): Map<string, number> {
  const out = new Map<string, number>();
  for (let c = 0; c < config.numCores; c++) {
    for (const s of listCoreSegments(config, c)) out.set(s.path, lstatIfExists(s.path)?.size ?? 0);
  }
  return out;
}

/**
 * What a repair did to the files, from the segments before and after it: a report line counts
 * one decision, and one cut may put many later segments aside (a point in time on every core).
 */
function _changes(before: Map<string, number>, after: Map<string, number>) {
  let putAside = 0;
  let cut = 0;
  for (const [path, size] of before) {
    const now = after.get(path);
    if (now === undefined) putAside++;
    else if (now < size) cut++;
  }
  return { segmentsPutAside: putAside, segmentsCut: cut };
}

/** Runs `repair`. Returns the exit code. */
export async function repair(config: PerCoreWalConfig, o: RepairOptions): Promise<number> {
  const dir = config.baseDir;
  if (!o.dryRun) {
    // Refuse before anything else when a manager holds the directory.
    unlockWalDirectory(lockWalDirectory(dir));
  }
  const recovery = (readOnly: boolean) =>
    new PerCoreRecoveryManager(config, {
      mode: o.mode,
      readOnly,
      checkpointDir: o.checkpointDir,
    });
  let plan;
  try {
    plan = await recovery(true).recover();
  } catch (e) {
    if (e instanceof PerCoreWalError && o.mode === "tolerateTornTail" && e.code !== "Locked") {
      throw new PerCoreWalError(
        e.code,
        `${e.message}; tolerateTornTail only cuts torn tails: see --mode pointInTime or salvage`,
        { segment: e.segment, offset: e.offset, coreId: e.coreId, cause: e },
      );
    }
    throw e;
  }
  let unfixed;
  try {
    // What verify reports and this plan leaves alone is listed, and keeps the exit at 1.
    const scan = await scanDirectory(config, { checkpointDir: o.checkpointDir });
    unfixed = unfixedDamage(scan, plan.report, o.mode, plan.checkpoint);
    const todo = plan.report.filter((l) => l.action !== "none");
    for (const l of todo) console.log(_line(l, o.json, "plan"));
    for (const u of unfixed) {
      console.log(o.json ? jsonLine({ kind: "repair", phase: "unfixed", ...u }) : unfixedText(u));
    }
    if (!o.json) {
      console.log(
        `mode ${o.mode}: ${plan.entriesReplayed} entries would be replayed` +
          (plan.checkpoint ? ` after checkpoint ${plan.checkpoint.id}` : "") +
          (plan.stoppedBeforeEpoch === undefined
            ? ""
            : `, stopping before epoch ${plan.stoppedBeforeEpoch}`) +
          `; ${new Set(todo.map((l) => l.path)).size} segment(s) to act on` +
          (unfixed.length === 0 ? "" : `, ${unfixed.length} damage(s) it cannot fix`),
      );
    }
    if (o.dryRun || todo.length === 0) {
      if (!o.json) {
        console.log(
          o.dryRun
            ? "dry run: nothing changed"
            : unfixed.length === 0
            ? "nothing to repair"
            : "nothing repair can do",
        );
      }
      return _unfixedExit(unfixed.length);
    }
  } finally {
    plan.close();
  }
  const before = _segmentSizes(config);
  const done = await recovery(false).repairAllSegments();
  const changes = _changes(before, _segmentSizes(config));
  const applied = done.filter((l) => l.applied);
  for (const l of applied) console.log(_line(l, o.json, "done"));
  if (o.json) console.log(jsonLine({ kind: "repaired", ...changes, decisions: applied.length }));
  else {
    console.log(
      `repaired: ${changes.segmentsPutAside} segment(s) put aside, ${changes.segmentsCut} ` +
        `segment(s) cut (${applied.length} decision(s) of the report applied), with fsync`,
    );
  }
  return _unfixedExit(unfixed.length);
}

/** Exit 1, with a line on stderr, while damage that repair cannot fix remains. */
function _unfixedExit(count: number): number {
  if (count === 0) return 0;
  console.error(
    `wal repair: ${count} damage(s) that repair cannot fix remain (see "not repaired" above); ` +
      "wal verify keeps failing on them",
  );
  return 1;
}
