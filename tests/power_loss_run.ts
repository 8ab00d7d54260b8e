// `deno task test:powerloss`: runs the power-loss simulator on many seeds.
//   SEEDS=n (or --seeds=n): seeds 1..n (default 200); FROM=k (--from=k): start at seed k;
//   SEED=s (or --seed=s): that seed only; --trace prints every step of a single seed.
//   SEGMENT_FILL=zeros|allocate|auto (or --fill=...): the segmentFill option (default auto).
// Prints the failing seed with the command that replays it, and exits 1.
import type { SegmentFill } from "../src/config.ts";
import { simulate } from "./_power_loss_sim.ts";

const flag = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const args = {
  seed: flag("seed"),
  seeds: flag("seeds"),
  from: flag("from"),
  trace: Deno.args.includes("--trace"),
  fill: flag("fill") ?? Deno.env.get("SEGMENT_FILL") ?? "auto",
};
const one = args.seed ?? Deno.env.get("SEED");
const count = Number(args.seeds ?? Deno.env.get("SEEDS") ?? 200);
const from = Number(args.from ?? Deno.env.get("FROM") ?? 1);
const seeds = one !== undefined ? [Number(one)] : Array.from({ length: count }, (_, i) => from + i);
if (seeds.some((s) => !Number.isSafeInteger(s))) {
  console.error("SEED, SEEDS and FROM must be integers");
  Deno.exit(2);
}

const t0 = performance.now();
const totals = {
  powerLosses: 0,
  appended: 0,
  acknowledged: 0,
  survivors: 0,
  torn: 0,
  vanished: 0,
  dirOpsUndone: 0,
  reopenCrashes: 0,
  repairs: 0,
  layoutChains: 0,
  durableWriteChains: 0,
  layoutLost: 0,
  extensionChains: 0,
  extensionLost: 0,
  checkpoints: 0,
  checkpointsDone: 0,
  checkpointCrashes: 0,
  checkpointsRetiring: 0,
  piecewiseFiles: 0,
  lockFiles: 0,
  recoveryRuns: 0,
  recoveryRepairs: 0,
  recoveryCrashes: 0,
};
const crashSteps: Record<string, number> = {};
const modes = { direct: 0, buffered: 0 };
for (const seed of seeds) {
  const dir = await Deno.makeTempDir({ prefix: "percore-wal-powerloss-" });
  try {
    const trace = args.trace ? (l: string) => console.log(l) : undefined;
    const r = await simulate(seed, dir, trace, args.fill as SegmentFill);
    totals.powerLosses += r.powerLosses;
    totals.appended += r.recordsAppended;
    totals.acknowledged += r.recordsAcknowledged;
    totals.survivors += r.unacknowledgedSurvivors;
    totals.torn += r.tornWrites;
    totals.vanished += r.vanishedFiles;
    totals.dirOpsUndone += r.dirOpsUndone;
    totals.reopenCrashes += r.reopenCrashes;
    totals.repairs += r.repairs;
    totals.layoutChains += r.layoutChains;
    totals.durableWriteChains += r.durableWriteChains;
    totals.layoutLost += r.layoutLost;
    totals.extensionChains += r.extensionChains;
    totals.extensionLost += r.extensionLost;
    totals.checkpoints += r.checkpoints;
    totals.checkpointsDone += r.checkpointsDone;
    totals.checkpointCrashes += r.checkpointCrashes;
    totals.checkpointsRetiring += r.checkpointsRetiring;
    totals.piecewiseFiles += r.piecewiseFiles;
    totals.lockFiles += r.lockFiles;
    totals.recoveryRuns += r.recoveryRuns;
    totals.recoveryRepairs += r.recoveryRepairs;
    totals.recoveryCrashes += r.recoveryCrashes;
    for (const [k, v] of Object.entries(r.checkpointCrashSteps)) {
      crashSteps[k] = (crashSteps[k] ?? 0) + v;
    }
    modes[r.writeMode]++;
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    if (e instanceof Error && e.cause instanceof Error) console.error(e.cause.stack);
    Deno.exit(1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  if (seeds.length > 1 && seed % 500 === 0) {
    console.log(`... seed ${seed} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
}
console.log(
  `${seeds.length} seeds passed (segmentFill ${args.fill}, ${modes.direct} direct, ${modes.buffered} buffered) in ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s: ${totals.powerLosses} power losses, ` +
    `${totals.appended} records appended, ${totals.acknowledged} acknowledged, ` +
    `${totals.survivors} unacknowledged survivors, ${totals.torn} torn writes, ` +
    `${totals.vanished} unsynced files vanished, ${totals.dirOpsUndone} directory changes undone, ` +
    `${totals.reopenCrashes} power losses inside a reopen, ${totals.repairs} crash tails repaired, ` +
    `${totals.durableWriteChains} batches written as durable writes, ` +
    `${totals.layoutChains} segment layout chains (${totals.layoutLost} layout writes lost; ` +
    `${totals.extensionChains} window extensions, ${totals.extensionLost} of their writes lost), ` +
    `${totals.checkpoints} checkpoints (${totals.checkpointsDone} finished, ` +
    `${totals.checkpointsRetiring} retiring segments, ${totals.checkpointCrashes} cut by a power ` +
    `loss, by last step reached: ${JSON.stringify(crashSteps)}), ${totals.recoveryRuns} ` +
    `repairing recoveries (${totals.recoveryRepairs} repairs applied, ${totals.recoveryCrashes} ` +
    `cut by a power loss); ${totals.piecewiseFiles} state files and spill runs written and ` +
    `${totals.lockFiles} wal.lock files created through the model`,
);
