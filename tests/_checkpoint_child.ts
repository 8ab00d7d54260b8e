// Child of the checkpoint crash test: exits with 86 right after the given checkpoint step,
// without closing anything (the files are left as a crash leaves them).
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { append, workload } from "./_model.ts";

const [dir, crashAt] = Deno.args;
const m = await PerCoreWalManager.open(
  new PerCoreWalConfig(dir, 2, { segmentSizeBytes: 64 * 1024 }),
);
const writers = [m.writer(0), m.writer(1)];
const coordinator = new CheckpointCoordinator(m, { retain: 1 });
append(writers, workload(40, 1500, 2));
await m.syncAll();
await coordinator.checkpoint();
append(writers, workload(41, 1500, 2));
await m.syncAll(); // everything is acknowledged before the crash
await coordinator.checkpoint({
  onStep: (step) => {
    if (step === crashAt) Deno.exit(86);
  },
});
console.error(`step ${crashAt} never came`);
Deno.exit(1);
