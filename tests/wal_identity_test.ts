// Checkpoints belong to their WAL (issue 18, "Checkpoints belong to their WAL", and open()'s half
// of item 3): a WAL id in wal.json and in every manifest; another WAL's checkpoint is never used;
// the default checkpoint directory is inside the WAL directory, with the old default migrated;
// open() refuses to start over a core whose history a checkpoint proves.
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import {
  type CheckpointMetadata,
  defaultCheckpointDir,
  encodeManifest,
  readCheckpoint,
} from "../src/checkpoint_store.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { tempDir } from "./_helpers.ts";

const OPTIONS = { segmentSizeBytes: 64 * 1024 };
const CLI = new URL("../cli.ts", import.meta.url).pathname;

function walJson(dir: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(`${dir}/wal.json`));
}

/** Writes `n` keys `${prefix}-i` on every core and syncs. */
async function write(m: PerCoreWalManager, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    m.writer(i % m.config.numCores).appendPut(`${prefix}-${i}`, "v".repeat(200));
  }
  await m.syncAll();
}

/** Rewrites a checkpoint's manifest as one written before WAL ids (no walId). */
function makeLegacy(path: string): void {
  const meta = readCheckpoint(path) as CheckpointMetadata;
  assert(!("invalid" in meta));
  Deno.writeFileSync(`${path}/manifest.json`, encodeManifest({ ...meta, walId: undefined }));
  assertEquals((readCheckpoint(path) as CheckpointMetadata).walId, undefined);
}

Deno.test("a new WAL gets a random walId in wal.json, kept on every rewrite; a wal.json without one gets one at the next open", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  let id: string;
  {
    await using m = await PerCoreWalManager.open(config);
    id = walJson(config.baseDir).walId as string;
    assertMatch(id, /^[0-9a-f]{32}$/);
    assertEquals(m.walId, id);
  }
  // A rewrite (more cores): the id stays.
  {
    await using _ = await PerCoreWalManager.open(
      new PerCoreWalConfig(config.baseDir, 2, OPTIONS),
    );
    assertEquals(walJson(config.baseDir).walId, id);
    assertEquals(walJson(config.baseDir).numCores, 2);
  }
  // Another WAL gets another id.
  {
    await using other = await PerCoreWalManager.open(
      new PerCoreWalConfig(`${dir.path}/other`, 1, OPTIONS),
    );
    assertNotEquals(other.walId, id);
  }
  // A wal.json of before WAL ids: the next open gives it one (the migration) and keeps it.
  const legacy = walJson(config.baseDir);
  delete legacy.walId;
  Deno.writeTextFileSync(`${config.baseDir}/wal.json`, JSON.stringify(legacy));
  let migrated: string;
  {
    await using m = await PerCoreWalManager.open(new PerCoreWalConfig(config.baseDir, 2, OPTIONS));
    migrated = walJson(config.baseDir).walId as string;
    assertMatch(migrated, /^[0-9a-f]{32}$/);
    assertEquals(m.walId, migrated);
  }
  {
    await using _ = await PerCoreWalManager.open(new PerCoreWalConfig(config.baseDir, 2, OPTIONS));
    assertEquals(walJson(config.baseDir).walId, migrated);
  }
});

Deno.test("every checkpoint manifest records the walId of its WAL; the default checkpoint directory is inside the WAL directory", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  await using m = await PerCoreWalManager.open(config);
  await write(m, "k", 10);
  const coordinator = new CheckpointCoordinator(m);
  assertEquals(coordinator.checkpointDir, `${config.baseDir}/checkpoints`);
  assertEquals(defaultCheckpointDir(config.baseDir), `${config.baseDir}/checkpoints`);
  const meta = await coordinator.checkpoint();
  assertEquals(meta.walId, m.walId);
  const read = readCheckpoint(meta.path) as CheckpointMetadata;
  assertEquals(read.walId, m.walId);
  assertStringIncludes(Deno.readTextFileSync(`${meta.path}/manifest.json`), m.walId);
  // The WAL directory still opens and recovers with the checkpoint directory inside it.
  await m.close();
  using r = await recoverPerCore(config.baseDir, { readOnly: true });
  assertEquals(r.checkpoint?.id, meta.id);
  assertEquals(r.state.size, 10);
});

Deno.test("two WALs sharing the old default checkpoint directory: neither's recovery, checkpoint or cleanup uses the other's checkpoints", async () => {
  await using dir = await tempDir();
  const shared = `${dir.path}/checkpoints`; // the old default of both
  const a = new PerCoreWalConfig(`${dir.path}/a`, 1, OPTIONS);
  const b = new PerCoreWalConfig(`${dir.path}/b`, 1, OPTIONS);
  let bId: string;
  {
    await using ma = await PerCoreWalManager.open(a);
    await write(ma, "a", 300);
  }
  {
    await using mb = await PerCoreWalManager.open(b);
    bId = mb.walId;
    await write(mb, "b", 1000);
    const cb = new CheckpointCoordinator(mb, { checkpointDir: shared, retain: 1 });
    await cb.checkpoint();
    await write(mb, "b2", 10);
  }
  // WAL a's recovery: b's checkpoint (the newest in the directory) is foreign, never replayed.
  {
    using r = await recoverPerCore(a.baseDir, { checkpointDir: shared, readOnly: true });
    assertEquals(r.checkpoint, undefined);
    assertEquals(r.state.size, 300);
    const line = r.checkpointReport.find((c) => c.status === "foreign");
    assertStringIncludes(line?.reason ?? "", bId);
    assertStringIncludes(line?.reason ?? "", walJson(a.baseDir).walId as string);
  }
  // WAL a's own checkpoints in the shared directory: built on its own, b's never deleted.
  let aCkpt: CheckpointMetadata;
  {
    await using ma = await PerCoreWalManager.open(a);
    const ca = new CheckpointCoordinator(ma, { checkpointDir: shared, retain: 1 });
    aCkpt = await ca.checkpoint();
    assertEquals(aCkpt.previousId, undefined);
    assertEquals(aCkpt.stateEntries, 300);
    await write(ma, "a2", 5);
    const again = await ca.checkpoint();
    assertEquals(again.previousId, aCkpt.id);
    assertEquals(again.stateEntries, 305);
    assertEquals(await ca.cleanupOldCheckpoints(1), 0);
    assertEquals((await ca.listCheckpoints()).map((c) => c.walId), [ma.walId]);
  }
  const left = [...Deno.readDirSync(shared)].map((e) => readCheckpoint(`${shared}/${e.name}`));
  assertEquals(left.filter((m) => !("invalid" in m) && m.walId === bId).length, 1);
  // WAL b's recovery uses its own checkpoint, not a's newer ones.
  {
    using r = await recoverPerCore(b.baseDir, { checkpointDir: shared, readOnly: true });
    assertEquals(r.checkpoint?.walId, bId);
    assertEquals(r.state.size, 1010);
  }
  // The CLI: a's checkpoints list b's as foreign, and verify is not failed by it.
  const out = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "checkpoints", a.baseDir, "--checkpoint-dir", shared],
    env: { NO_COLOR: "1" },
  }).outputSync();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, text + new TextDecoder().decode(out.stderr));
  assertStringIncludes(text, "foreign");
});

Deno.test("migration: the old default directory's checkpoints of this WAL are built on and recovered from until the new default holds one", async () => {
  await using dir = await tempDir();
  const old = `${dir.path}/checkpoints`;
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  let oldId: number;
  {
    await using m = await PerCoreWalManager.open(config);
    await write(m, "k", 1000);
    // Written where the old default put them; retain 1 retires the segments it covers.
    oldId = (await new CheckpointCoordinator(m, { checkpointDir: old, retain: 1 }).checkpoint()).id;
    await write(m, "after", 10);
  }
  assert(!Deno.readDirSync(config.baseDir).some((e) => e.name === "wal-0-000000.log"));
  {
    using r = await recoverPerCore(config.baseDir, { readOnly: true });
    assertEquals(r.checkpoint?.path, `${old}/ckpt-${String(oldId).padStart(10, "0")}`);
    assertEquals(r.state.size, 1010);
  }
  {
    await using m = await PerCoreWalManager.open(config);
    const meta = await new CheckpointCoordinator(m).checkpoint();
    assertEquals(meta.path.startsWith(`${config.baseDir}/checkpoints/`), true);
    assertEquals(meta.previousId, oldId);
    assert(meta.id > oldId);
    assertEquals(meta.stateEntries, 1010);
  }
  using r = await recoverPerCore(config.baseDir, { readOnly: true });
  assertEquals(r.checkpoint?.path.startsWith(`${config.baseDir}/checkpoints/`), true);
  assertEquals(r.state.size, 1010);
});

Deno.test("migration: a legacy checkpoint (no walId) in the old default is used only where its barriers are in this WAL's log", async () => {
  await using dir = await tempDir();
  const old = `${dir.path}/checkpoints`;
  const a = new PerCoreWalConfig(`${dir.path}/a`, 1, OPTIONS);
  const b = new PerCoreWalConfig(`${dir.path}/b`, 1, OPTIONS);
  {
    await using ma = await PerCoreWalManager.open(a);
    await write(ma, "a", 1000);
    const ckpt = await new CheckpointCoordinator(ma, { checkpointDir: old, retain: 1 })
      .checkpoint();
    makeLegacy(ckpt.path);
    await write(ma, "a2", 10);
  }
  {
    await using mb = await PerCoreWalManager.open(b);
    await write(mb, "b", 50);
  }
  // a's legacy checkpoint fits a's log: used. For b it does not: foreign, b replays its own log.
  {
    using r = await recoverPerCore(a.baseDir, { readOnly: true });
    assertEquals(r.checkpoint?.walId, undefined);
    assertEquals(r.state.size, 1010);
  }
  using r = await recoverPerCore(b.baseDir, { readOnly: true });
  assertEquals(r.checkpoint, undefined);
  assertEquals(r.state.size, 50);
  assertStringIncludes(r.checkpointReport[0]?.reason ?? "", "legacy checkpoint");
  assertEquals(r.checkpointReport[0]?.status, "foreign");
});

Deno.test("PerCoreWalManager.open() refuses a core whose segments are gone while a checkpoint of this WAL says it had a history, and changes nothing", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  let ckpt: CheckpointMetadata;
  {
    await using m = await PerCoreWalManager.open(config);
    await write(m, "k", 100);
    ckpt = await new CheckpointCoordinator(m).checkpoint();
    await write(m, "after", 10);
  }
  for (const e of Deno.readDirSync(config.baseDir)) {
    if (e.name.endsWith(".log")) Deno.removeSync(`${config.baseDir}/${e.name}`);
  }
  const before = [...Deno.readDirSync(config.baseDir)].map((e) => e.name).sort();
  const meta = Deno.readTextFileSync(`${config.baseDir}/wal.json`);
  const e = await assertRejects(() => PerCoreWalManager.open(config), PerCoreWalError);
  assertEquals(e.code, "Corrupted");
  assertEquals(e.coreId, 0);
  assertStringIncludes(e.message, "Core 0");
  assertStringIncludes(e.message, ckpt.path);
  assertStringIncludes(e.message, "no segment");
  assertEquals([...Deno.readDirSync(config.baseDir)].map((e) => e.name).sort(), before);
  assertEquals(Deno.readTextFileSync(`${config.baseDir}/wal.json`), meta);
});

Deno.test("PerCoreWalManager.open() refuses a core whose segments end below the checkpoint's barrier", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  const saved = `${dir.path}/saved`;
  Deno.mkdirSync(saved);
  {
    await using m = await PerCoreWalManager.open(config);
    await write(m, "k", 20);
  }
  // The segments as they were before the checkpoint, put back after it.
  for (const e of Deno.readDirSync(config.baseDir)) {
    if (e.name.endsWith(".log")) {
      Deno.copyFileSync(`${config.baseDir}/${e.name}`, `${saved}/${e.name}`);
    }
  }
  {
    await using m = await PerCoreWalManager.open(config);
    await new CheckpointCoordinator(m).checkpoint();
  }
  for (const e of Deno.readDirSync(config.baseDir)) {
    if (e.name.endsWith(".log")) Deno.removeSync(`${config.baseDir}/${e.name}`);
  }
  for (const e of Deno.readDirSync(saved)) {
    Deno.copyFileSync(`${saved}/${e.name}`, `${config.baseDir}/${e.name}`);
  }
  const e = await assertRejects(() => PerCoreWalManager.open(config), PerCoreWalError);
  assertEquals(e.code, "Corrupted");
  assertStringIncludes(e.message, "end at sequence 20");
});

Deno.test("PerCoreWalManager.open() and recovery agree: a core started over past the checkpoint's sequence is refused by both", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  {
    await using m = await PerCoreWalManager.open(config);
    await write(m, "old", 300);
    await new CheckpointCoordinator(m).checkpoint();
    await write(m, "after", 10);
  }
  for (const e of Deno.readDirSync(config.baseDir)) {
    if (e.name.endsWith(".log")) Deno.removeSync(`${config.baseDir}/${e.name}`);
  }
  // A new life of the core, its sequences beyond the barrier's, while the checkpoints were away.
  Deno.renameSync(`${config.baseDir}/checkpoints`, `${dir.path}/aside`);
  {
    await using m = await PerCoreWalManager.open(config);
    await write(m, "new", 1000);
  }
  Deno.renameSync(`${dir.path}/aside`, `${config.baseDir}/checkpoints`);
  const e = await assertRejects(() => PerCoreWalManager.open(config), PerCoreWalError);
  assertEquals(e.code, "Corrupted");
  assertStringIncludes(e.message, "holds no barrier of sequence 301");
  const r = await assertRejects(
    () => recoverPerCore(config.baseDir, { readOnly: true }),
    PerCoreWalError,
  );
  assertEquals(r.code, "Corrupted");
});

Deno.test("PerCoreWalManager.open({ checkpointDir }) checks the checkpoints of a directory other than the default as it checks the default's: a started-over core is refused, as recovery refuses it", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  const checkpointDir = `${dir.path}/elsewhere`;
  {
    await using m = await PerCoreWalManager.open(config, { checkpointDir });
    await write(m, "old", 300);
    // The coordinator writes where the manager's checkpoints are.
    const c = new CheckpointCoordinator(m);
    assertEquals(c.checkpointDir, checkpointDir);
    const meta = await c.checkpoint();
    assertStringIncludes(meta.path, checkpointDir);
    await write(m, "after", 10);
  }
  for (const e of Deno.readDirSync(config.baseDir)) {
    if (e.name.endsWith(".log")) Deno.removeSync(`${config.baseDir}/${e.name}`);
  }
  // The segments gone: refused, naming the checkpoint.
  const gone = await assertRejects(
    () => PerCoreWalManager.open(config, { checkpointDir }),
    PerCoreWalError,
  );
  assertEquals(gone.code, "Corrupted");
  assertStringIncludes(gone.message, checkpointDir);
  assertStringIncludes(gone.message, "no segment");
  // A new life of the core while the checkpoints were away: refused by open() and recovery.
  Deno.renameSync(checkpointDir, `${dir.path}/aside`);
  {
    await using m = await PerCoreWalManager.open(config, { checkpointDir });
    await write(m, "new", 1000);
  }
  Deno.renameSync(`${dir.path}/aside`, checkpointDir);
  const e = await assertRejects(
    () =>
      PerCoreWalManager.open(`${dir.path}/wal`, {
        checkpointDir: new URL(`file://${checkpointDir}`),
      }),
    PerCoreWalError,
  );
  assertEquals(e.code, "Corrupted");
  assertStringIncludes(e.message, "holds no barrier of sequence 301");
  const r = await assertRejects(
    () => recoverPerCore(config.baseDir, { readOnly: true, checkpointDir }),
    PerCoreWalError,
  );
  assertEquals(r.code, "Corrupted");
});

Deno.test("PerCoreWalManager.open() refuses a checkpointDir of the wrong type, and an unknown option still", async () => {
  await using dir = await tempDir();
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => PerCoreWalManager.open(`${dir.path}/wal`, { cores: 1, checkpointDir: 5 as any }),
    TypeError,
  );
});
