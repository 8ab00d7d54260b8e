// `deno task test:powerloss:workers`: the power-loss simulator with the manager's Workers
// (tests/_power_loss_workers.ts) on many seeds.
//   SEEDS=n (or --seeds=n): seeds 1..n (default 100); FROM=k (--from=k): start at seed k;
//   SEED=s (or --seed=s): that seed only; --trace prints what each session did.
// Prints the failing seed with the command that replays it, and exits 1.
import { simulateWorkers, type WorkerSimResult } from "./_power_loss_workers.ts";

const flag = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const one = flag("seed") ?? Deno.env.get("SEED");
const count = Number(flag("seeds") ?? Deno.env.get("SEEDS") ?? 100);
const from = Number(flag("from") ?? Deno.env.get("FROM") ?? 1);
const seeds = one !== undefined ? [Number(one)] : Array.from({ length: count }, (_, i) => from + i);
if (seeds.some((s) => !Number.isSafeInteger(s))) {
  console.error("SEED, SEEDS and FROM must be integers");
  Deno.exit(2);
}
const trace = Deno.args.includes("--trace") ? (l: string) => console.log(l) : undefined;

const t0 = performance.now();
const totals: Record<string, number> = {};
const modes = { direct: 0, buffered: 0 };
for (const seed of seeds) {
  const dir = await Deno.makeTempDir({ prefix: "percore-wal-powerloss-workers-" });
  try {
    const r: WorkerSimResult = await simulateWorkers(seed, dir, trace);
    for (const [k, v] of Object.entries(r)) {
      if (typeof v === "number" && k !== "seed") totals[k] = (totals[k] ?? 0) + v;
    }
    modes[r.writeMode]++;
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    if (e instanceof Error && e.cause instanceof Error) console.error(e.cause.stack);
    Deno.exit(1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  if (seeds.length > 1 && seed % 100 === 0) {
    console.log(`... seed ${seed} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
}
const t = totals;
console.log(
  `${seeds.length} seeds passed with the manager's Workers (${modes.direct} direct, ` +
    `${modes.buffered} buffered) in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
    `${t.sessions} sessions each ended by a power loss (${t.cutsInWorkerOps} at an operation of a ` +
    `core Worker), ${t.recordsAppended} records appended, ${t.recordsAcknowledged} acknowledged ` +
    `(${t.producerAcknowledged} by a producer Worker), ${t.unacknowledgedSurvivors} ` +
    `unacknowledged survivors, ${t.tornWrites} torn writes, ${t.dirOpsUndone} directory changes ` +
    `undone, ${t.segmentsCreated} segments created by the Workers, ${t.layoutChains} layout ` +
    `chains (${t.extensionChains} window extensions), ${t.checkpoints} checkpoints ` +
    `(${t.checkpointsDone} finished, ${t.checkpointsCut} in progress at the power loss), ` +
    `${t.workerOps} Worker operations through the model`,
);
