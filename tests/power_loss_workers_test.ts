// The power-loss simulator with the manager's Workers (tests/_power_loss_workers.ts) on a fixed
// set of seeds; `deno task test:powerloss:workers` runs many more.
import { assert } from "@std/assert";
import { tempDir } from "./_helpers.ts";
import { simulateWorkers } from "./_power_loss_workers.ts";

Deno.test(
  "power-loss simulator with the manager's Workers: fixed seeds (every record whose sync() resolved on its producer's thread survives power losses during appends, rotations, window extensions, checkpoints and Worker operations; reopen and recovery agree)",
  async () => {
    const total = {
      sessions: 0,
      cutsInWorkerOps: 0,
      acknowledged: 0,
      producerAcknowledged: 0,
      segmentsCreated: 0,
      extensionChains: 0,
      checkpointsDone: 0,
      checkpointsCut: 0,
      tornWrites: 0,
      survivors: 0,
    };
    for (let seed = 1; seed <= 30; seed++) {
      await using dir = await tempDir();
      const r = await simulateWorkers(seed, dir.path);
      total.sessions += r.sessions;
      total.cutsInWorkerOps += r.cutsInWorkerOps;
      total.acknowledged += r.recordsAcknowledged;
      total.producerAcknowledged += r.producerAcknowledged;
      total.segmentsCreated += r.segmentsCreated;
      total.extensionChains += r.extensionChains;
      total.checkpointsDone += r.checkpointsDone;
      total.checkpointsCut += r.checkpointsCut;
      total.tornWrites += r.tornWrites;
      total.survivors += r.unacknowledgedSurvivors;
    }
    // The seeds reach what they are meant to: power losses at Worker operations and between
    // steps, records acknowledged on the main thread and in a producer Worker, rotations (more
    // segments than sessions), window extensions, checkpoints finished and cut, torn writes.
    const t = JSON.stringify(total);
    assert(total.sessions > 30 && total.cutsInWorkerOps > 0, t);
    assert(total.acknowledged > 1000 && total.producerAcknowledged > 100, t);
    assert(total.segmentsCreated > 2 * total.sessions && total.extensionChains > 0, t);
    assert(total.checkpointsDone > 0 && total.checkpointsCut > 0, t);
    assert(total.tornWrites > 0 && total.survivors > 0, t);
  },
);
