// Power loss: crash tails made of batches in flight (holes before later, never acknowledged
// batches) are cut; holes that a later batch marker proves acknowledged are corruption. Hand-made
// cases on real files, then the seeded simulator (tests/_power_loss_sim.ts) on a fixed set of
// seeds; `deno task test:powerloss` runs many more.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { scanSegment } from "../src/segment_probes.ts";
import { PerCoreRecoveryManager } from "../src/recovery.ts";
import { BATCH_MARKER_BYTES } from "../src/format.ts";
import type { PerCoreWalConfig } from "../src/config.ts";
import { asPut, readCore, str, tempDir } from "./_helpers.ts";
import { holeBeforeBatchC, tailAcrossRotation, threeBatches, zero } from "./_crash_tails.ts";
import { simulate } from "./_power_loss_sim.ts";
import { ChangeSet, StateFile, StateFileWriter } from "../src/state_file.ts";
import { lockWalDirectory, unlockWalDirectory } from "../src/lock.ts";
import { isSimulatedCrash, PowerLossBackend } from "./_power_loss_backend.ts";
import {
  removePath,
  renamePath,
  replaceDurabilityOps,
  syncDirectory,
  writeSyncedFile,
} from "../src/fs.ts";

/** Sequences that the real recovery (read only, default mode) returns for core 0. */
async function recovered(config: PerCoreWalConfig): Promise<number[]> {
  using r = await new PerCoreRecoveryManager(config, { readOnly: true }).recoverWalOnly();
  return [...r.state].map(([k]) => Number(str(k).split("-")[1])).sort((a, b) => a - b);
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

Deno.test("a hole followed by batches never acknowledged is a crash tail: recovery stops, reopen cuts it", async () => {
  await using dir = await tempDir();
  const { config, path, recs } = await threeBatches(dir.path, false);
  // Batch C's marker claims only batch A: B and C were in flight together.
  using r = await PerCoreWalReader.open(path);
  while ((await r.readNext()).kind === "entry");
  assertEquals(r.acknowledgedClaim, 3);
  const bStart = recs[3].offset - BATCH_MARKER_BYTES;
  zero(path, bStart, recs[6].offset - BATCH_MARKER_BYTES);
  const end = (await scanSegment(path)).end;
  assertEquals([end.kind, end.offset], ["torn", bStart]);
  assertEquals(await recovered(config), [1, 2, 3]);
  const log = await CoreLog.open(config, 0);
  assertEquals(log.sequence, 3);
  assertEquals(log.appendPut("k-4", "again"), 4);
  await log.close();
  const entries = await readCore(config);
  assertEquals(entries.map((e) => e.sequence), [1, 2, 3, 4]);
  assertEquals(str(asPut(entries[3].operation).value), "again");
});

Deno.test("a hole before a batch marker that proves it acknowledged is corruption, never cut", async () => {
  await using dir = await tempDir();
  const { config, path, holeOffset: bStart } = await holeBeforeBatchC(dir.path, true);
  const end = (await scanSegment(path)).end;
  assertEquals([end.kind, end.offset], ["corrupted", bStart]);
  assert(
    end.kind === "corrupted" && end.reason.includes("through sequence 6"),
    JSON.stringify(end),
  );
  const e = await assertRejects(() => recovered(config), PerCoreWalError);
  assertEquals([e.code, e.offset], ["Corrupted", bStart]);
  const e2 = await assertRejects(() => CoreLog.open(config, 0), PerCoreWalError);
  assertEquals(e2.code, "Corrupted");
  // Nothing was cut.
  assertEquals((await Deno.stat(path)).size, config.options.segmentSizeBytes);
});

Deno.test("a torn sector in the middle of a batch in flight ends the log at the record it tore", async () => {
  await using dir = await tempDir();
  const { config, path, recs } = await threeBatches(dir.path, false);
  // A sector wholly inside record 5 (batch B), left as zeros; B's other sectors were written.
  const victim = recs[4];
  const sector = Math.ceil(victim.offset / 512) * 512;
  assert(sector + 512 <= victim.offset + victim.length + 300, "record 5 spans a whole sector");
  zero(path, sector, sector + 512);
  const end = (await scanSegment(path)).end;
  assertEquals([end.kind, end.offset], ["torn", victim.offset]);
  assertEquals(await recovered(config), [1, 2, 3, 4]);
  await (await CoreLog.open(config, 0)).close();
  assertEquals((await readCore(config)).map((e) => Number(e.sequence)), [1, 2, 3, 4]);
});

Deno.test("a crash tail across a rotation: the hole in the old segment is cut and the new segment removed, unless a marker in it proves the hole acknowledged", async () => {
  for (const proven of [false, true]) {
    await using dir = await tempDir();
    const { config, holeOffset } = await tailAcrossRotation(dir.path, proven);
    if (proven) {
      // The torn record fails its checksum; a marker in segment 1 proves it acknowledged.
      const e = await assertRejects(() => recovered(config), PerCoreWalError, "segment");
      assertEquals([e.code, e.offset], ["ChecksumMismatch", holeOffset]);
      await assertRejects(() => CoreLog.open(config, 0), PerCoreWalError, "acknowledged");
      continue;
    }
    assertEquals(await recovered(config), range(1, 5));
    const again = await CoreLog.open(config, 0);
    assertEquals(again.sequence, 5);
    assertEquals(again.appendPut("k-6", "after"), 6);
    await again.close();
    assertEquals((await readCore(config)).map((e) => Number(e.sequence)), range(1, 6));
    assertEquals(listCoreSegments(config, 0).map((s) => s.index).slice(0, 2), [0, 1]);
  }
});

Deno.test("power-loss simulator: fixed seeds (every acknowledged record survives reopens and checkpoints cut by power losses, nothing corrupt is returned, the log keeps working)", async () => {
  const total = {
    losses: 0,
    reopenCrashes: 0,
    repairs: 0,
    layoutChains: 0,
    durableWrites: 0,
    undone: 0,
    checkpointsDone: 0,
    retiring: 0,
    checkpointCrashes: 0,
    extensions: 0,
    recoveryRuns: 0,
  };
  for (let seed = 1; seed <= 60; seed++) {
    await using dir = await tempDir();
    const r = await simulate(seed, dir.path);
    total.losses += r.powerLosses;
    total.reopenCrashes += r.reopenCrashes;
    total.repairs += r.repairs;
    total.layoutChains += r.layoutChains;
    total.durableWrites += r.durableWriteChains;
    total.undone += r.dirOpsUndone;
    total.checkpointsDone += r.checkpointsDone;
    total.retiring += r.checkpointsRetiring;
    total.checkpointCrashes += r.checkpointCrashes;
    total.extensions += r.extensionChains;
    total.recoveryRuns += r.recoveryRuns;
    assert(r.powerLosses >= 1);
  }
  // The seeds reach what they are meant to: power losses inside reopens, crash tails repaired,
  // segments laid out, unsynced directory changes undone, checkpoints finished (some retiring
  // segments) and cut by power losses.
  assert(total.losses >= 60, JSON.stringify(total));
  assert(total.reopenCrashes > 0 && total.repairs > 0, JSON.stringify(total));
  assert(total.layoutChains > 0 && total.undone > 0, JSON.stringify(total));
  // Small batches in direct mode are durable writes: the model keeps only their own ranges.
  assert(total.durableWrites > 0, JSON.stringify(total));
  assert(total.checkpointsDone > 0 && total.retiring > 0, JSON.stringify(total));
  assert(total.checkpointCrashes > 0 && total.extensions > 0, JSON.stringify(total));
  assert(total.recoveryRuns > 0, JSON.stringify(total));
});

Deno.test("a crash tail at a rotation (a segment starting past a hole no marker claims) is in the recovery report: repair puts the segment aside, strict refuses it", async () => {
  await using dir = await tempDir();
  const { config } = await tailAcrossRotation(dir.path, false, "batch");
  const seg1 = config.segmentPath(0, 1);
  {
    using r = await new PerCoreRecoveryManager(config, { readOnly: true }).recoverWalOnly();
    const line = r.report.find((l) => l.status === "tornTail");
    assertEquals(
      [line?.path, line?.offset, line?.action, line?.applied],
      [seg1, 0, "truncated", false],
    );
  }
  const e = await assertRejects(
    () => new PerCoreRecoveryManager(config, { readOnly: true, mode: "strict" }).recoverWalOnly(),
    PerCoreWalError,
  );
  assertEquals(e.code, "TornWrite");
  const done = await new PerCoreRecoveryManager(config).repairAllSegments();
  assert(done.some((l) => l.path === seg1 && l.applied), JSON.stringify(done));
  assertEquals(await recovered(config), range(1, 4));
  const log = await CoreLog.open(config, 0);
  assertEquals(log.appendPut("k-5", "after"), 5);
  await log.close();
  assertEquals((await readCore(config)).map((x) => Number(x.sequence)), range(1, 5));
});

Deno.test("power-loss model: a rename or an unlink not followed by a directory fsync may be undone; one followed by it is kept", async () => {
  for (const fsync of [false, true]) {
    await using dir = await tempDir();
    // rand 0: the power loss keeps nothing that was not durable.
    const io = new PowerLossBackend(() => 0, false, dir.path);
    const before = replaceDurabilityOps(io.ops);
    try {
      writeSyncedFile(`${dir.path}/a`, new Uint8Array([1]), 0o644);
      writeSyncedFile(`${dir.path}/b`, new Uint8Array([2]), 0o644);
      syncDirectory(dir.path);
      renamePath(`${dir.path}/a`, `${dir.path}/a.aside`);
      removePath(`${dir.path}/b`);
      if (fsync) syncDirectory(dir.path);
      const r = io.powerLoss();
      assertEquals(r.dirOpsUndone, fsync ? 0 : 2);
    } finally {
      replaceDurabilityOps(before);
    }
    const names = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
    assertEquals(names, fsync ? ["a.aside"] : ["a", "b"]);
    assertEquals(Deno.readFileSync(`${dir.path}/${fsync ? "a.aside" : "a"}`), new Uint8Array([1]));
  }
});

Deno.test("power-loss model: a state file, a spill run and wal.lock go through the model: unsynced writes and entries are lost, fsynced ones kept", async () => {
  await using dir = await tempDir();
  const key = (i: number) => new TextEncoder().encode(`k-${String(i).padStart(4, "0")}`);
  // rand 0: the power loss keeps nothing that was not durable.
  const io = new PowerLossBackend(() => 0, false, dir.path);
  const before = replaceDurabilityOps(io.ops);
  let lock;
  try {
    // Durable: written, fsynced (finish), its entry fsynced.
    const kept = StateFileWriter.create(`${dir.path}/kept.kv`);
    for (let i = 0; i < 100; i++) kept.add(key(i), new Uint8Array(64).fill(i));
    kept.finish();
    // Its entry durable, its bytes never fsynced.
    const torn = StateFileWriter.create(`${dir.path}/unsynced.kv`);
    for (let i = 0; i < 100; i++) torn.add(key(i), new Uint8Array(64).fill(i));
    syncDirectory(dir.path);
    // Written and fsynced, its entry never fsynced: a spill run, and a state file.
    Deno.mkdirSync(`${dir.path}/ckpt`);
    syncDirectory(dir.path);
    const changes = new ChangeSet(`${dir.path}/ckpt`, 1);
    changes.set(key(1), new Uint8Array([1]));
    assertEquals(changes.runs, 1);
    StateFileWriter.create(`${dir.path}/ckpt/state.kv`).finish();
    lock = lockWalDirectory(dir.path);
    assertEquals([io.fsOps.writable, io.fsOps.writableSync, io.fsOps.createNew], [4, 3, 1]);
    const r = io.powerLoss();
    assert(r.dropped > 0, JSON.stringify(r));
    torn.abort();
  } finally {
    replaceDurabilityOps(before);
    if (lock !== undefined) unlockWalDirectory(lock);
  }
  // wal.lock's entry was never fsynced: gone, as the spill run and the other state file.
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name).sort(), [
    "ckpt",
    "kept.kv",
    "unsynced.kv",
  ]);
  assertEquals([...Deno.readDirSync(`${dir.path}/ckpt`)], []);
  assertEquals(Deno.statSync(`${dir.path}/unsynced.kv`).size, 0);
  const f = StateFile.open(`${dir.path}/kept.kv`);
  try {
    assertEquals([...f].length, 100);
  } finally {
    f.close();
  }
});

Deno.test("a power loss at each operation of reopen's crash-tail repair loses nothing recovered, and the next reopen finishes the repair", async () => {
  let crashes = 0;
  for (const keep of [0, 0.99]) {
    for (let n = 0;; n++) {
      await using dir = await tempDir();
      const { config } = await tailAcrossRotation(dir.path, false);
      // keep 0: the power loss undoes every unsynced change; 0.99: it keeps nearly all.
      const io = new PowerLossBackend(() => keep, false, dir.path);
      const before = replaceDurabilityOps(io.ops);
      let finished = false;
      try {
        io.crashAfter(n);
        try {
          await (await CoreLog.open(config, 0, { backend: io })).close();
          finished = !io.crashed;
        } catch (e) {
          if (!isSimulatedCrash(e)) throw e;
        }
        if (!finished) {
          crashes++;
          io.powerLoss();
          assertEquals(await recovered(config), range(1, 5), `power loss at operation ${n}`);
          const log = await CoreLog.open(config, 0, { backend: io });
          assertEquals(log.sequence, 5);
          await log.close();
        }
        // The repair went through the model (renames aside, the cut, fsyncs).
        assert(io.fsOps.rename + io.fsOps.truncate + io.fsOps.syncDirectory > 0);
      } finally {
        replaceDurabilityOps(before);
        await io.close();
      }
      assertEquals(await recovered(config), range(1, 5));
      const again = await CoreLog.open(config, 0);
      assertEquals(again.appendPut("k-6", "after"), 6);
      await again.close();
      assertEquals((await readCore(config)).map((x) => Number(x.sequence)), range(1, 6));
      if (finished) break;
    }
  }
  assert(crashes >= 4, `only ${crashes} power losses inside the repair`);
});
