// A checkpoint says where each core's log goes on; recovery refuses segments that are not that
// log instead of serving the checkpoint's stale state (issue 18, item 3).
import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { tempDir } from "./_helpers.ts";

const OPTIONS = { backend: "sync" as const, segmentSizeBytes: 64 * 1024 };

Deno.test("a core whose segments were deleted and started over after a checkpoint: recovery refuses in every mode but salvage, which reports it", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  {
    await using m = await PerCoreWalManager.open(config);
    for (let i = 0; i < 300; i++) m.writer(0).appendPut(`old-${i}`, "x".repeat(100));
    await m.syncAll();
    await new CheckpointCoordinator(m).checkpoint();
    m.writer(0).appendPut("after-checkpoint", "1");
    await m.syncAll();
  }
  for (const e of Deno.readDirSync(config.baseDir)) {
    if (e.name.endsWith(".log")) Deno.removeSync(`${config.baseDir}/${e.name}`);
  }
  {
    // A new life of the core: sequences from 1 again, acknowledged. open() itself refuses this
    // while it sees the checkpoint (wal_identity_test.ts): the checkpoints are out of its sight
    // meanwhile, as another process's or an older version's open would have done.
    Deno.renameSync(`${config.baseDir}/checkpoints`, `${dir.path}/aside`);
    await using m = await PerCoreWalManager.open(config);
    for (let i = 0; i < 1000; i++) m.writer(0).appendPut(`new-${i}`, "y".repeat(100));
    await m.syncAll();
  }
  Deno.renameSync(`${dir.path}/aside`, `${config.baseDir}/checkpoints`);
  for (const mode of ["tolerateTornTail", "strict", "pointInTime"] as const) {
    const e = await assertRejects(
      () => recoverPerCore(config.baseDir, { mode, readOnly: true }),
      PerCoreWalError,
    );
    assertEquals(e.code, "Corrupted", mode);
  }
  using salvaged = await recoverPerCore(config.baseDir, { mode: "salvage", readOnly: true });
  const line = salvaged.report.find((l) => l.status === "missing");
  assertStringIncludes(line?.reason ?? "", "not the log the checkpoint was taken of");
});
