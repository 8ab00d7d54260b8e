// Crash loop on real processes (see tests/crash_loop.ts): a child appends from two producers with
// durable acknowledgements, rotates small segments and takes checkpoints, and is killed with
// SIGKILL at seeded moments (after a delay, right after a rotation, right after a checkpoint
// step); every acknowledged record must be there exactly once with its bytes, each core's
// sequences without gap, and the WAL must go on. CYCLES=n, SEED=s (default 30 cycles, seed 2026);
// `deno task test:crash --cycles N --seed S` runs the same loop outside the test runner.
import { assert } from "@std/assert";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";
import { runCrashLoop } from "./crash_loop.ts";

Deno.test({
  name: "SIGKILL during appends, rotations and checkpoints loses no acknowledged record",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cycles = Number(Deno.env.get("CYCLES") ?? 30);
    const seed = Number(Deno.env.get("SEED") ?? 2026);
    try {
      const res = await runCrashLoop({ dir: dir.path, cycles, seed });
      assert(res.acked > 0, "the children acknowledged records");
      assert(res.checkpointsUsed > 0, "recovery started from a checkpoint at least once");
      if (cycles >= 30) {
        for (const kind of ["delay", "checkpoint", "rotation"]) {
          assert((res.kills[kind] ?? 0) > 0, `some kills were of kind ${kind}`);
        }
      }
    } catch (e) {
      console.error(`replay: CYCLES=${cycles} SEED=${seed} deno test -A tests/crash_test.ts`);
      throw e;
    }
  },
});
