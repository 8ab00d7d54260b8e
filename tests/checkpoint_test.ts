// Checkpoints on a running manager (real Workers, rings and files), recovery from them, and a
// crash between every pair of checkpoint steps (a child process that exits mid-checkpoint).
import { assert, assertEquals, assertGreater, assertRejects } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";
import { append, asStrings, model, workload } from "./_model.ts";

function config(dir: string, cores = 2, options = {}) {
  return new PerCoreWalConfig(`${dir}/wal`, cores, { segmentSizeBytes: 64 * 1024, ...options });
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

test("a checkpoint holds the state of every entry up to its epoch; recovery = checkpoint + replay", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  const m = await PerCoreWalManager.open(cfg);
  const writers = [m.writer(0), m.writer(1)];
  const first = workload(1, 2000, 2);
  append(writers, first);
  const coordinator = new CheckpointCoordinator(m);
  assertEquals(coordinator.checkpointDir, `${dir.path}/wal/checkpoints`);
  const meta = await coordinator.checkpoint();
  assertEquals([meta.id, meta.epoch, meta.entriesMerged], [1, 0, 2000]);
  assertEquals(meta.stateEntries, model(first).state.size);
  assertEquals(meta.walPositions.map((p) => p.coreId), [0, 1]);
  assertEquals(m.epoch, 1);
  const second = workload(2, 1500, 2);
  append(writers, second);
  await m.syncAll();
  await m.close();
  using r = await recoverPerCore(cfg.baseDir);
  const want = model([...first, ...second]);
  assertEquals(r.checkpoint?.id, 1);
  assertEquals(asStrings(r.state), want.state);
  assertEquals(r.state.size, want.state.size);
  assertEquals(r.offsets, want.offsets);
  assertEquals(r.watermarks, want.watermarks);
  assertEquals(
    r.entriesReplayed,
    1500 + 2,
    "the entries after the checkpoint and its two barriers",
  );
  assertEquals(r.finalEpoch, 1);
  for (const [k, v] of want.state) assertEquals(new TextDecoder().decode(r.state.get(k)!), v);
  assert(!r.state.has("no-such-key"));
});

test("successive checkpoints build on each other, keep `retain`, and retire only covered segments", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  const m = await PerCoreWalManager.open(cfg);
  const writers = [m.writer(0), m.writer(1)];
  const coordinator = new CheckpointCoordinator(m, { retain: 2 });
  const all = [];
  let segmentsBefore = 0;
  for (let round = 0; round < 5; round++) {
    const steps = workload(10 + round, 1500, 2);
    all.push(...steps);
    append(writers, steps);
    if (round === 2) segmentsBefore = listCoreSegments(cfg, 0).length;
    const meta = await coordinator.checkpoint();
    assertEquals(meta.id, round + 1);
    assertEquals(meta.epoch, round);
    assertEquals(asStrings(await stateOf(meta.path)), model(all).state);
  }
  const kept = await coordinator.listCheckpoints();
  assertEquals(kept.map((k) => k.id), [4, 5]);
  // Segments before the oldest kept checkpoint's barriers are gone; none after them.
  for (const c of [0, 1]) {
    const first = listCoreSegments(cfg, c)[0].index;
    assertEquals(first, kept[0].walPositions[c].segment);
  }
  assertGreater(segmentsBefore, listCoreSegments(cfg, 0).length - 2);
  await m.close();
  using r = await recoverPerCore(cfg.baseDir);
  assertEquals(r.checkpoint?.id, 5);
  assertEquals(asStrings(r.state), model(all).state);
  assertEquals(await coordinator.cleanupOldCheckpoints(1), 1);
  assertEquals((await coordinator.listCheckpoints()).map((k) => k.id), [5]);
});

test("a torn or damaged newest manifest falls back to the previous checkpoint, with the same state", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  const m = await PerCoreWalManager.open(cfg);
  const writers = [m.writer(0), m.writer(1)];
  const coordinator = new CheckpointCoordinator(m, { retain: 3 });
  const all = workload(20, 1000, 2);
  append(writers, all);
  await coordinator.checkpoint();
  const more = workload(21, 1000, 2);
  append(writers, more);
  const second = await coordinator.checkpoint();
  await m.close();
  const manifest = `${second.path}/manifest.json`;
  const good = Deno.readFileSync(manifest);
  for (const damage of ["torn", "flipped", "stateFlipped"] as const) {
    if (damage === "torn") Deno.writeFileSync(manifest, good.subarray(0, good.length - 30));
    if (damage === "flipped") {
      const b = good.slice();
      b[40] ^= 1;
      Deno.writeFileSync(manifest, b);
    }
    if (damage === "stateFlipped") {
      Deno.writeFileSync(manifest, good);
      const s = Deno.readFileSync(`${second.path}/state.kv`);
      s[100] ^= 1;
      Deno.writeFileSync(`${second.path}/state.kv`, s);
    }
    using r = await recoverPerCore(cfg.baseDir, { readOnly: true });
    assertEquals(r.checkpoint?.id, 1, damage);
    assertEquals(r.checkpointReport[0].status, "invalid");
    assertEquals(asStrings(r.state), model([...all, ...more]).state, damage);
  }
});

test("the application's snapshot bytes (or a function of the epoch) are kept with the checkpoint", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path, 1);
  const m = await PerCoreWalManager.open(cfg);
  const coordinator = new CheckpointCoordinator(m);
  m.writer(0).appendPut("a", "1");
  const a = await coordinator.checkpoint({ state: new TextEncoder().encode("snapshot-A") });
  assert(a.hasAppState);
  const b = await coordinator.checkpoint({
    state: (epoch) => new TextEncoder().encode(`at-${epoch}`),
  });
  assertEquals(b.epoch, 1);
  await m.close();
  using r = await recoverPerCore(cfg.baseDir);
  assertEquals(new TextDecoder().decode(r.appState), "at-1");
  assertEquals(asStrings(r.state), new Map([["a", "1"]]));
});

test("a state larger than the change memory spills sorted runs and stays exact", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path, 2, { segmentSizeBytes: 1 << 20 });
  const m = await PerCoreWalManager.open(cfg);
  const coordinator = new CheckpointCoordinator(m, { maxMemoryBytes: 64 * 1024 });
  const steps = workload(30, 20000, 2, 5000);
  append([m.writer(0), m.writer(1)], steps);
  const meta = await coordinator.checkpoint();
  assertEquals(meta.stateEntries, model(steps).state.size);
  await m.close();
  using r = await recoverPerCore(cfg.baseDir);
  assertEquals(asStrings(r.state), model(steps).state);
});

test("recovery that would change files is refused while a manager holds the directory; read-only works", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path, 1);
  const m = await PerCoreWalManager.open(cfg);
  m.writer(0).appendPut("k", "v");
  await m.syncAll();
  const e = await assertRejects(() => recoverPerCore(cfg.baseDir), PerCoreWalError);
  assertEquals(e.code, "Locked");
  using r = await recoverPerCore(cfg.baseDir, { readOnly: true });
  assertEquals(asStrings(r.state), new Map([["k", "v"]]));
  await m.close();
});

// The crash test: a child appends and syncs a workload, takes a first checkpoint, appends more,
// and exits abruptly (no close) right after a step of the second checkpoint.
const steps = ["barriersDurable", "stateWritten", "renamed", "retiring", "done"] as const;
for (const step of steps) {
  test(`a crash right after checkpoint step "${step}" recovers the same state`, async () => {
    await using dir = await tempDir();
    const child = new URL("./_checkpoint_child.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", child, `${dir.path}/wal`, step],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 86, `child should exit at ${step}: ${text}`);
    using r = await recoverPerCore(`${dir.path}/wal`);
    const want = model([...workload(40, 1500, 2), ...workload(41, 1500, 2)]);
    assertEquals(asStrings(r.state), want.state);
    assertEquals(r.offsets, want.offsets);
    // The WAL opens again and goes on.
    const m = await PerCoreWalManager.open(
      new PerCoreWalConfig(`${dir.path}/wal`, 2, { segmentSizeBytes: 64 * 1024 }),
    );
    m.writer(0).appendPut("after", "crash");
    await m.syncAll();
    await new CheckpointCoordinator(m).checkpoint();
    await m.close();
  });
}

async function stateOf(path: string) {
  const { StateFile } = await import("../src/state_file.ts");
  const f = StateFile.open(`${path}/state.kv`);
  const out: [Uint8Array, Uint8Array][] = [];
  for (const [k, v] of f) if (v !== undefined) out.push([k, v]);
  f.close();
  return out;
}

test("a checkpoint of an empty WAL, then recovery, gives an empty state; the next checkpoint builds on it", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  const m = await PerCoreWalManager.open(cfg);
  const coordinator = new CheckpointCoordinator(m);
  const first = await coordinator.checkpoint();
  assertEquals([first.id, first.entriesMerged, first.stateEntries], [1, 0, 0]);
  m.writer(1).appendPut("x", "1");
  const second = await coordinator.checkpoint();
  assertEquals([second.previousId, second.stateEntries], [1, 1]);
  await m.close();
  using r = await recoverPerCore(cfg.baseDir);
  assertEquals(asStrings(r.state), new Map([["x", "1"]]));
  assertEquals(r.entriesReplayed, 2, "only the two barriers after the second checkpoint");
});

test("a damaged newest state file is not built upon: the next checkpoint starts from the last valid one", async () => {
  await using dir = await tempDir();
  const cfg = config(dir.path);
  let m = await PerCoreWalManager.open(cfg);
  const steps = workload(50, 1000, 2);
  append([m.writer(0), m.writer(1)], steps);
  await new CheckpointCoordinator(m).checkpoint();
  const more = workload(51, 1000, 2);
  append([m.writer(0), m.writer(1)], more);
  const second = await new CheckpointCoordinator(m).checkpoint();
  await m.close();
  const s = Deno.readFileSync(`${second.path}/state.kv`);
  s[100] ^= 1;
  Deno.writeFileSync(`${second.path}/state.kv`, s);
  m = await PerCoreWalManager.open(cfg);
  const third = await new CheckpointCoordinator(m).checkpoint();
  assertEquals(third.previousId, 1);
  await m.close();
  using r = await recoverPerCore(cfg.baseDir);
  assertEquals(r.checkpoint?.id, 3);
  assertEquals(asStrings(r.state), model([...steps, ...more]).state);
});

test("after reopening with more cores, checkpoints include the new cores and retire nothing of them", async () => {
  await using dir = await tempDir();
  let m = await PerCoreWalManager.open(config(dir.path, 1));
  const first = workload(60, 800, 1);
  append([m.writer(0)], first);
  await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
  await m.close();
  m = await PerCoreWalManager.open(config(dir.path, 2));
  const second = workload(61, 800, 2).map((s) => ({
    ...s,
    key: "key" in s ? `n-${s.key}` : "",
  })) as typeof first;
  append([m.writer(0), m.writer(1)], second);
  const meta = await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
  assertEquals(meta.walPositions.length, 2);
  await m.close();
  using r = await recoverPerCore(config(dir.path, 2).baseDir);
  assertEquals(asStrings(r.state), model([...first, ...second]).state);
});
