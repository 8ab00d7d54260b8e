// AbortSignal on every wait: an aborted wait rejects with the signal's reason, at once when the
// signal is aborted already, and leaves nothing half-done (the record it waited for is still
// written and becomes durable; an aborted checkpoint leaves no checkpoint; an aborted recovery
// changes nothing); a later call works.
import { assert, assertEquals, assertRejects, assertStrictEquals } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreRecoveryManager, recoverPerCore } from "../src/recovery.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import {
  ignoreWithoutUring,
  readCore,
  smallConfig,
  tempDir,
  TINY_BUFFER_OPTIONS,
} from "./_helpers.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

/** A flush delay no test waits for: a durability wait stays pending until close() drains. */
const SLOW = { syncDelayMs: 1_000 };

/** A reason no code of the module would make up. */
const reason = () => new Error("stop waiting");

test("CoreWalWriter.waitDurable({ signal }) rejects with the reason, removes the wait, and the record still becomes durable", async () => {
  await using dir = await tempDir();
  const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1, SLOW);
  const m = await PerCoreWalManager.open(cfg);
  const w = m.writer(0);
  const seq = w.appendPut("k", "v");
  // Aborted before: rejects at once.
  const before = reason();
  const e0 = await assertRejects(() => w.waitDurable(seq, { signal: AbortSignal.abort(before) }));
  assertStrictEquals(e0, before);
  // Aborted during the wait.
  const ac = new AbortController();
  const waiting = w.waitDurable(seq, { signal: ac.signal });
  const during = reason();
  ac.abort(during);
  assertStrictEquals(await waiting.catch((e) => e), during);
  assert(w.durableSequence < seq, "the wait ended by the abort, not by durability");
  // A later wait works; close() drains the record.
  const later = w.waitDurable(seq);
  const synced = w.sync({ signal: new AbortController().signal });
  await m.close();
  await later;
  await synced;
  assertEquals((await readCore(cfg)).map((e) => e.sequence), [seq]);
});

test("sync({ signal }) and syncAll({ signal }) reject with the reason; the records become durable", async () => {
  await using dir = await tempDir();
  const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 2, SLOW);
  const m = await PerCoreWalManager.open(cfg);
  m.writer(0).appendPut("a", "1");
  m.writer(1).appendPut("b", "2");
  const r1 = reason();
  assertStrictEquals(await m.syncAll({ signal: AbortSignal.abort(r1) }).catch((e) => e), r1);
  const ac = new AbortController();
  const all = m.syncAll({ signal: ac.signal });
  const one = m.writer(1).sync({ signal: ac.signal });
  const r2 = reason();
  ac.abort(r2);
  assertStrictEquals(await all.catch((e) => e), r2);
  assertStrictEquals(await one.catch((e) => e), r2);
  assertEquals([m.writer(0).durableSequence, m.writer(1).durableSequence], [0, 0]);
  const later = m.syncAll();
  await m.close();
  await later;
  assertEquals((await readCore(cfg, 0)).length, 1);
  assertEquals((await readCore(cfg, 1)).length, 1);
});

test("CoreLog.sync({ signal }) and waitDurable({ signal }) reject with the reason; a later sync works", async () => {
  await using dir = await tempDir();
  const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1, SLOW);
  const log = await CoreLog.open(cfg, 0);
  const seq = log.appendPut("k", "v");
  const r0 = reason();
  assertStrictEquals(await log.sync({ signal: AbortSignal.abort(r0) }).catch((e) => e), r0);
  const ac = new AbortController();
  const a = log.sync({ signal: ac.signal });
  const b = log.waitDurable(seq, { signal: ac.signal });
  const r1 = reason();
  ac.abort(r1);
  assertStrictEquals(await a.catch((e) => e), r1);
  assertStrictEquals(await b.catch((e) => e), r1);
  assertEquals(log.durableSequence, 0);
  const later = log.sync();
  await log.close();
  await later;
  assertEquals((await readCore(cfg)).map((e) => e.sequence), [seq]);
});

test("a signal that is not an AbortSignal is a TypeError, on every wait", async () => {
  await using dir = await tempDir();
  const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1);
  const bad = { signal: { aborted: true } as unknown as AbortSignal };
  {
    await using m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    const seq = w.appendPut("k", "v");
    await assertRejects(() => w.sync(bad), TypeError, "AbortSignal");
    await assertRejects(() => w.waitDurable(seq, bad), TypeError, "AbortSignal");
    await assertRejects(() => m.syncAll(bad), TypeError, "AbortSignal");
    await assertRejects(() => w.appendPutAsync("k", "v", bad), TypeError, "AbortSignal");
    await assertRejects(() => w.appendAsync({ type: "delete", key: "k" }, bad), TypeError);
    await assertRejects(() => new CheckpointCoordinator(m).checkpoint(bad), TypeError);
    assertEquals(w.sequence, seq, "a refused append claims nothing");
  }
  await assertRejects(() => recoverPerCore(cfg.baseDir, bad), TypeError, "AbortSignal");
  assertEquals(
    (() => {
      try {
        new PerCoreRecoveryManager(cfg, bad);
      } catch (e) {
        return e instanceof TypeError;
      }
    })(),
    true,
  );
  {
    const log = await CoreLog.open(cfg, 0);
    await assertRejects(() => log.sync(bad), TypeError, "AbortSignal");
    await log.close();
  }
});

test("appendPutAsync/appendAsync({ signal }) aborted while waiting for space append nothing; later appends work", async () => {
  await using dir = await tempDir();
  const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1, TINY_BUFFER_OPTIONS);
  const m = await PerCoreWalManager.open(cfg);
  const w = m.writer(0);
  const value = new Uint8Array(1900);
  const r0 = reason();
  assertStrictEquals(
    await w.appendPutAsync("k", value, { signal: AbortSignal.abort(r0) }).catch((e) => e),
    r0,
  );
  assertEquals(w.sequence, 0);
  let accepted = 0;
  for (let round = 0; round < 5; round++) {
    try {
      for (let i = 0; i < 100_000; i++) {
        w.appendPut(`k${accepted}`, value);
        accepted++;
      }
    } catch (e) {
      assert(e instanceof PerCoreWalError && e.code === "Backpressure", String(e));
    }
    const before = w.sequence;
    const ac = new AbortController();
    const put = w.appendPutAsync("late", value, { signal: ac.signal });
    const op = w.appendAsync({ type: "put", key: "late", value }, { signal: ac.signal });
    const r1 = reason();
    ac.abort(r1);
    assertStrictEquals(await put.catch((e) => e), r1);
    assertStrictEquals(await op.catch((e) => e), r1);
    assertEquals(w.sequence, before, "an aborted append claims no sequence");
  }
  await w.appendPutAsync("after", value, { signal: new AbortController().signal });
  accepted++;
  await w.sync();
  await m.close();
  const entries = await readCore(cfg);
  assertEquals(entries.length, accepted);
});

/** Names in the checkpoint directory, and every segment file with its size. */
function snapshot(cfg: PerCoreWalConfig, ckptDir: string) {
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(ckptDir)].map((e) => e.name).sort();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const segments = [];
  for (let c = 0; c < cfg.numCores; c++) {
    for (const s of listCoreSegments(cfg, c)) segments.push([s.path, Deno.statSync(s.path).size]);
  }
  return { names, segments };
}

test("checkpoint({ signal }): aborted before, or at any step before the rename, it leaves no checkpoint; a later one works", async () => {
  await using dir = await tempDir();
  const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 2, { segmentSizeBytes: 64 * 1024 });
  const m = await PerCoreWalManager.open(cfg);
  const c = new CheckpointCoordinator(m, { retain: 1 });
  const put = (n: number) => {
    for (let i = 0; i < n; i++) m.writer(i % 2).appendPut(`k${i}`, new Uint8Array(200).fill(i));
  };
  put(2000); // several segments: a checkpoint would retire some
  await m.syncAll();
  const empty = snapshot(cfg, c.checkpointDir);
  const r0 = reason();
  assertStrictEquals(await c.checkpoint({ signal: AbortSignal.abort(r0) }).catch((e) => e), r0);
  assertEquals(m.epoch, 0, "an already aborted checkpoint does nothing");
  for (const step of ["barriersDurable", "stateWritten"] as const) {
    const ac = new AbortController();
    const r = reason();
    const before = snapshot(cfg, c.checkpointDir);
    const got = await c.checkpoint({
      signal: ac.signal,
      state: (epoch) => new TextEncoder().encode(`app state ${epoch}`),
      onStep: (s) => void (s === step && ac.abort(r)),
    }).catch((e) => e);
    assertStrictEquals(got, r, step);
    const after = snapshot(cfg, c.checkpointDir);
    assertEquals(after.names.filter((n) => n.startsWith("ckpt-")), [], `${step}: no checkpoint`);
    assertEquals(
      after.segments.filter(([p]) => before.segments.some(([q]) => q === p)).length,
      before.segments.length,
      `${step}: no segment retired`,
    );
    assertEquals(await c.listCheckpoints(), []);
  }
  assertEquals(empty.segments.length > 2, true);
  // A later checkpoint works, and recovery sees all of it.
  const meta = await c.checkpoint({ signal: new AbortController().signal });
  assertEquals(meta.id, 1);
  assertEquals((await c.listCheckpoints()).length, 1);
  await m.close();
  using r = await recoverPerCore(cfg.baseDir);
  assertEquals(r.checkpoint?.id, 1);
  assertEquals(r.state.size, 2000);
});

test("checkpoint({ signal }) aborted while queued behind a running one rejects at once; the running one and a later one work", async () => {
  await using dir = await tempDir();
  const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1);
  const m = await PerCoreWalManager.open(cfg);
  const c = new CheckpointCoordinator(m);
  m.writer(0).appendPut("k", "v");
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  let reached!: () => void;
  const atGate = new Promise<void>((resolve) => reached = resolve);
  const first = c.checkpoint({
    onStep: async (s) => {
      if (s !== "barriersDurable") return;
      reached();
      await gate;
    },
  });
  await atGate;
  const ac = new AbortController();
  const queued = c.checkpoint({ signal: ac.signal });
  const r = reason();
  ac.abort(r);
  assertStrictEquals(await queued.catch((e) => e), r);
  // The one after the aborted one still waits for the running one.
  const third = c.checkpoint();
  open();
  const [a, b] = await Promise.all([first, third]);
  assertEquals([a.id, b.id], [1, 2]);
  await m.close();
});

test("checkpoint({ signal }) aborted while its barriers wait to be durable leaves no checkpoint", async () => {
  await using dir = await tempDir();
  const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1, SLOW);
  const m = await PerCoreWalManager.open(cfg);
  const c = new CheckpointCoordinator(m);
  m.writer(0).appendPut("k", "v");
  const ac = new AbortController();
  const steps: string[] = [];
  const run = c.checkpoint({ signal: ac.signal, onStep: (s) => void steps.push(s) });
  // The barrier is appended synchronously once the queue lets the run start.
  while (m.epoch === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  const r = reason();
  ac.abort(r);
  assertStrictEquals(await run.catch((e) => e), r);
  assertEquals(steps, []);
  assertEquals(await c.listCheckpoints(), []);
  await m.close();
});

/** A WAL of `n` puts on one core whose last record is torn. */
async function tornWal(dir: string, n: number) {
  const cfg = new PerCoreWalConfig(`${dir}/wal`, 1, { segmentSizeBytes: 1024 * 1024 });
  {
    await using m = await PerCoreWalManager.open(cfg);
    for (let i = 0; i < n; i++) m.writer(0).appendPut(`k${i}`, `v${i}`);
  }
  // The last record of the last segment that holds one (the next one is prepared ahead).
  let path = "";
  let last = -1;
  for (const seg of listCoreSegments(cfg, 0)) {
    await using r = await PerCoreWalReader.open(seg.path);
    for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
      [path, last] = [seg.path, x.offset];
    }
  }
  assert(last > 0);
  const bytes = Deno.readFileSync(path);
  bytes.fill(0, last + 10, last + 20);
  Deno.writeFileSync(path, bytes);
  return { cfg, path, size: bytes.length, last };
}

test("recoverPerCore({ signal }) aborted before or during replay returns nothing and changes nothing; a later one repairs", async () => {
  await using dir = await tempDir();
  const n = 5000;
  const { cfg, path, size, last } = await tornWal(dir.path, n);
  const r0 = reason();
  assertStrictEquals(
    await recoverPerCore(cfg.baseDir, { signal: AbortSignal.abort(r0) }).catch((e) => e),
    r0,
  );
  const ac = new AbortController();
  const r1 = reason();
  let seen = 0;
  const got = await recoverPerCore(cfg.baseDir, {
    signal: ac.signal,
    onEntry: () => void (++seen === 10 && ac.abort(r1)),
  }).catch((e) => e);
  assertStrictEquals(got, r1);
  assertEquals(seen, 1024, "replay stopped at its next check (every 1024 entries)");
  assertEquals(Deno.statSync(path).size, size, "the torn tail was not cut");
  // repairAllSegments too, and the lock was released each time.
  const r2 = reason();
  const repair = new PerCoreRecoveryManager(cfg, { signal: AbortSignal.abort(r2) });
  assertStrictEquals(await repair.repairAllSegments().catch((e) => e), r2);
  assertEquals(Deno.statSync(path).size, size);
  using r = await recoverPerCore(cfg.baseDir, { signal: new AbortController().signal });
  assertEquals(r.entriesReplayed, n - 1);
  assertEquals(Deno.statSync(path).size, last);
});

Deno.test({
  name: "a mistyped wait option (sigal, timeout) is refused with the nearest name, not ignored",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using m = await PerCoreWalManager.open(smallConfig(dir.path, { backend: "sync" }));
    const w = m.writer(0);
    const seq = w.appendPut("k", "v");
    const typo = { sigal: AbortSignal.timeout(10) } as never;
    await assertRejects(() => w.sync(typo), TypeError, "did you mean signal?");
    await assertRejects(() => w.waitDurable(seq, typo), TypeError, "did you mean signal?");
    await assertRejects(() => m.syncAll(typo), TypeError, "did you mean signal?");
    await assertRejects(
      () => w.appendPutAsync("x", "y", { timeout: 5 } as never),
      TypeError,
      "did you mean timeoutMs?",
    );
    assertEquals(w.sequence, seq, "the refused append took no sequence");
    await w.sync();
  },
});
