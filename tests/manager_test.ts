// The Worker runtime: one Worker per core on real rings and files, producers on the main
// thread and in application Workers, epochs, failures, backpressure, locking, reopening.
import { assert, assertEquals, assertGreater, assertRejects, assertThrows } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { CoreWalWriter } from "../src/writer.ts";
import type { PerCoreWalEntry } from "../src/types.ts";
import {
  asPut,
  BACKENDS,
  ignoreWithoutUring,
  produce,
  readCore,
  rng,
  str,
  tempDir,
  TINY_BUFFER_OPTIONS,
} from "./_helpers.ts";

function config(dir: string, cores: number, options = {}) {
  return new PerCoreWalConfig(`${dir}/wal`, cores, { segmentSizeBytes: 256 * 1024, ...options });
}

for (const backend of BACKENDS) {
  const ignore = backend === "io_uring" && ignoreWithoutUring;
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `[${backend}] ${name}`, ignore, fn });

  test("PerCoreWalManager: appends on every core, syncAll(), mergeSegments() ordered by (epoch, timestampNs, coreId, sequence)", async () => {
    await using dir = await tempDir();
    const cfg = config(dir.path, 2, { backend });
    const m = await PerCoreWalManager.open(cfg);
    assertEquals([m.numCores, m.backend, m.epoch], [2, backend, 0]);
    assertEquals(m.writer(0).appendPut("key1", "value1"), 1);
    assertEquals(m.writer(1).appendPut("key2", "value2"), 1);
    assertEquals(m.writer(0).appendDelete("key0"), 2);
    await m.writer(0).sync();
    assertGreater(m.writer(0).durableSequence, 1);
    await m.syncAll();
    const merged = await Array.fromAsync(m.mergeSegments());
    assertEquals(merged.length, 3);
    for (let i = 1; i < merged.length; i++) {
      const [a, b] = [merged[i - 1], merged[i]];
      assert(
        a.epoch < b.epoch || (a.epoch === b.epoch && a.timestampNs <= b.timestampNs),
        "merge order",
      );
    }
    assertEquals(str(asPut(merged.find((e) => e.coreId === 1)!.operation).value), "value2");
    const stats = await m.segmentStats();
    assertEquals(stats.map((s) => [s.coreId, s.entryCount]), [[0, 2], [1, 1]]);
    assertEquals(m.syncedPositions().map((p) => p.sequence), [2, 1]);
    const metrics = m.metrics();
    assertEquals(metrics.map((x) => x.recordsAppended), [2, 1]);
    assert(metrics.every((x) => x.batches >= 1 && x.backend === backend && !x.failed));
    await m.close();
    await m.close();
  });

  test("main thread and application Workers append to every core at once; each acknowledged record is read back exactly once, in order", async () => {
    await using dir = await tempDir();
    const cfg = config(dir.path, 3, { backend });
    const m = await PerCoreWalManager.open(cfg);
    const cores = [0, 1, 2];
    const workers = [0, 1].map((w) =>
      produce(cores.map((c) => m.writerHandle(c)), 3000, `w${w}`, 97)
    );
    const mine: [number, number, string][] = [];
    for (let i = 0; i < 3000; i++) {
      const c = i % 3;
      const key = `main-${i}`;
      mine.push([c, m.writer(c).appendPut(key, `value-${i}`), key]);
      if (i % 50 === 49) await m.syncAll();
    }
    await m.syncAll();
    const acked = [...mine, ...(await Promise.all(workers)).flat()];
    assertEquals(acked.length, 9000);
    await m.close();
    for (const c of cores) {
      const entries = await readCore(cfg, c);
      entries.forEach((e, i) => assertEquals(e.sequence, i + 1, "per-core sequence has no gap"));
      const byKey = new Map(entries.map((e) => [str(asPut(e.operation).key), e.sequence]));
      assertEquals(byKey.size, entries.length, "no record twice");
      for (const [core, seq, key] of acked.filter((a) => a[0] === c)) {
        assertEquals(byKey.get(key), seq, `${key} acknowledged as ${seq} on core ${core}`);
      }
      assertEquals(entries.length, acked.filter((a) => a[0] === c).length);
    }
  });

  test("records of every size cross shared-buffer wraps, batch seals and rotations intact, in order, with rising timestamps", async () => {
    await using dir = await tempDir();
    // An 8 KiB shared buffer wraps every few records; 64 KiB batches and 256 KiB segments seal
    // and rotate in the middle of the runs the Worker takes at once.
    const cfg = config(dir.path, 1, {
      ...TINY_BUFFER_OPTIONS,
      backend,
      maxBatchBytes: 64 * 1024,
      segmentSizeBytes: 256 * 1024,
    });
    const m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    const r = rng(2024);
    const want: Uint8Array[] = [];
    for (let i = 0; i < 6000; i++) {
      // Odd and even lengths from 0 to 1900 bytes: records are packed, not aligned.
      const v = Uint8Array.from({ length: Math.floor(r() ** 3 * 1900) }, (_, j) => (i + j) & 0xff);
      want.push(v);
      await w.appendPutAsync(`k${i}`, v);
      if (i % 97 === 96) await w.sync();
    }
    await w.sync();
    await m.close();
    const entries = await readCore(cfg, 0);
    assertEquals(entries.length, want.length);
    let lastNs = 0n;
    entries.forEach((e, i) => {
      assertEquals(e.sequence, i + 1);
      assertEquals(str(asPut(e.operation).key), `k${i}`);
      assertEquals(asPut(e.operation).value, want[i], `value of record ${i + 1}`);
      assert(e.timestampNs >= lastNs, `timestamp of record ${i + 1} goes back`);
      lastNs = e.timestampNs;
    });
  });

  test("close() drains a backlog of many times maxPendingBytes without failing the core", async () => {
    await using dir = await tempDir();
    // 200 MB waiting in the shared buffer, at most 1 MiB not yet durable at a time: the Worker
    // takes a megabyte, waits for the disk, and goes on, some 200 times during close().
    const cfg = config(dir.path, 1, {
      backend,
      maxPendingBytes: 1024 * 1024,
      sharedBufferBytes: 256 * 1024 * 1024,
      segmentSizeBytes: 16 * 1024 * 1024,
    });
    const m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    const value = new Uint8Array(4000).fill(7);
    const n = 50_000;
    for (let i = 0; i < n; i++) w.appendPut(`k${i}`, value);
    await m.close();
    assertEquals(m.failures, [undefined], "no core failed");
    const entries = await readCore(cfg, 0);
    assertEquals(entries.length, n);
    assertEquals(str(asPut(entries[n - 1].operation).key), `k${n - 1}`);
  });

  test("epoch barriers separate epochs on every core while producers append concurrently", async () => {
    await using dir = await tempDir();
    const cfg = config(dir.path, 2, { backend });
    const m = await PerCoreWalManager.open(cfg);
    const handles = [0, 1].map((c) => m.writerHandle(c));
    const background = produce(handles, 4000, "bg", 31);
    const barriers: number[][] = [];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 200; i++) m.writer(i % 2).appendPut(`r${round}-${i}`, "x");
      assertEquals(m.advanceEpoch(), round + 1);
      barriers.push(m.writeEpochBarrierAll());
      await new Promise((r) => setTimeout(r, 2));
    }
    await background;
    await m.syncAll();
    await m.close();
    for (const c of [0, 1]) {
      const entries = await readCore(cfg, c);
      let epoch = 0;
      for (const e of entries) {
        if (e.operation.type === "epochBarrier") {
          epoch = e.operation.epoch;
          assertEquals(e.sequence, barriers[Number(epoch) - 1][c], "barrier where it was appended");
        }
        assertEquals(e.epoch, epoch, `core ${c} seq ${e.sequence}: epoch follows the last barrier`);
      }
      assertEquals(epoch, 5);
    }
  });

  test("reopening continues sequences and the epoch on every core", async () => {
    await using dir = await tempDir();
    const cfg = config(dir.path, 2, { backend });
    let m = await PerCoreWalManager.open(cfg);
    m.writer(0).appendPut("a", "1");
    m.writer(1).appendPut("b", "1");
    m.writer(1).appendPut("c", "1");
    m.advanceEpoch();
    m.advanceEpoch();
    m.writeEpochBarrierAll();
    await m.close();
    m = await PerCoreWalManager.open(cfg);
    assertEquals(m.epoch, 2);
    assertEquals([m.writer(0).sequence, m.writer(1).sequence], [2, 3]);
    assertEquals(m.writer(0).appendPut("d", "2"), 3);
    await m.syncAll();
    const last = (await Array.fromAsync(m.mergeSegments())).filter((e) => e.coreId === 0).at(-1)!;
    assertEquals([last.sequence, last.epoch], [3, 2]);
    await m.close();
  });

  test("close() writes exactly what was appended: no record of its own", async () => {
    await using dir = await tempDir();
    const cfg = config(dir.path, 2, { backend });
    const m = await PerCoreWalManager.open(cfg);
    for (let i = 0; i < 1000; i++) m.writer(i % 2).appendPut(`k${i}`, "v"); // never synced
    await m.close();
    assertEquals((await readCore(cfg, 0)).length + (await readCore(cfg, 1)).length, 1000);
    assertEquals(
      assertThrows(() => m.writer(0).appendPut("x", "y"), PerCoreWalError).code,
      "Closed",
    );
    assertEquals(assertThrows(() => m.advanceEpoch(), PerCoreWalError).code, "Closed");
  });
}

Deno.test({
  name:
    "a second manager on a directory in use is refused with Locked, in this process and in another",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path, 1);
    const m = await PerCoreWalManager.open(cfg);
    const e = await assertRejects(() => PerCoreWalManager.open(cfg), PerCoreWalError);
    assertEquals(e.code, "Locked");
    const root = new URL("..", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { PerCoreWalConfig, PerCoreWalManager } from "${root}mod.ts";
         try { await PerCoreWalManager.open(new PerCoreWalConfig(${
          JSON.stringify(cfg.baseDir)
        }, 1)); console.log("opened"); }
         catch (e) { console.log(e.code); }`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(new TextDecoder().decode(out.stdout).trim(), "Locked");
    await m.close();
    const again = await PerCoreWalManager.open(cfg);
    await again.close();
  },
});

Deno.test({
  name:
    "a core whose fdatasync fails rejects its waiters and later appends; the other cores keep working; acknowledged data is readable",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path, 2, { maxInFlightBatches: 1 });
    const m = await PerCoreWalManager.open(cfg, { faults: { 1: { failSyncAt: 3, errno: 5 } } });
    const acked: number[] = [];
    let failure: PerCoreWalError | undefined;
    for (let i = 0; i < 10 && failure === undefined; i++) {
      const seq = m.writer(1).appendPut(`k${i}`, "v");
      try {
        await m.writer(1).sync();
        acked.push(seq);
      } catch (e) {
        if (!(e instanceof PerCoreWalError)) throw e;
        failure = e;
      }
    }
    if (failure === undefined) throw new Error("the third batch's fdatasync did not fail");
    assertEquals([failure.code, failure.errno, failure.operation], ["Io", "EIO", "fdatasync"]);
    assertEquals(acked, [1, 2]);
    assertEquals((await assertRejects(() => m.writer(1).sync(), PerCoreWalError)).errno, "EIO");
    assertEquals(assertThrows(() => m.writer(1).appendPut("x", "y"), PerCoreWalError).errno, "EIO");
    assertEquals(m.failures[1]?.errno, "EIO");
    assertEquals(m.failures[0], undefined);
    assert(m.metrics()[1].failed);
    m.writer(0).appendPut("still", "working");
    await m.writer(0).sync();
    await assertRejects(() => m.close(), PerCoreWalError);
    const reopened = await PerCoreWalManager.open(cfg);
    const core1 = (await Array.fromAsync(reopened.mergeSegments())).filter((e: PerCoreWalEntry) =>
      e.coreId === 1
    );
    assertEquals(core1.map((e) => e.sequence).slice(0, 2), acked);
    await reopened.close();
  },
});

Deno.test({
  name:
    "a full shared buffer throws Backpressure on the main thread; appendPutAsync waits for space; nothing is dropped",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path, 1, TINY_BUFFER_OPTIONS);
    const m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    const value = new Uint8Array(1900);
    let accepted = 0;
    let err: unknown;
    try {
      for (let i = 0; i < 100_000; i++) {
        w.appendPut(`k${i}`, value);
        accepted++;
      }
    } catch (e) {
      err = e;
    }
    assert(err instanceof PerCoreWalError && err.code === "Backpressure", String(err));
    assertGreater(accepted, 3);
    for (let i = 0; i < 200; i++) await w.appendPutAsync(`a${i}`, value);
    await w.sync();
    assertEquals(w.durableSequence, accepted + 200);
    await m.close();
    assertEquals((await readCore(cfg)).length, accepted + 200);
  },
});

Deno.test({
  name:
    "writer(coreId) out of range is InvalidCoreId; a handle attaches once; bad arguments are TypeError",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const m = await PerCoreWalManager.open(config(dir.path, 2));
    for (const id of [2, -1, 0.5]) {
      assertEquals(assertThrows(() => m.writer(id), PerCoreWalError).code, "InvalidCoreId");
    }
    const h = m.writerHandle(0);
    CoreWalWriter.attach(h);
    assertEquals(assertThrows(() => CoreWalWriter.attach(h), PerCoreWalError).code, "Locked");
    assertThrows(() => CoreWalWriter.attach({} as never), TypeError);
    assertThrows(() => m.writer(0).appendPut(42 as unknown as string, "v"), TypeError);
    assertEquals(m.writer(0).sequence, 0, "a refused append claims no sequence");
    await assertRejects(() => PerCoreWalManager.open({} as PerCoreWalConfig), TypeError);
    await m.close();
  },
});

Deno.test({
  name: "pinWorkers pins each core's Worker to a CPU and the WAL works as usual",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path, 2, { pinWorkers: true });
    const m = await PerCoreWalManager.open(cfg);
    for (let i = 0; i < 100; i++) m.writer(i % 2).appendPut(`k${i}`, "v");
    await m.syncAll();
    assertEquals(m.syncedPositions().map((p) => p.sequence), [50, 50]);
    // The kernel says so: threads of this process allowed on one CPU only (read through grep:
    // Deno lets /proc/self/task be read only with --allow-all).
    const out = await new Deno.Command("sh", {
      args: ["-c", `grep -h Cpus_allowed_list /proc/${Deno.pid}/task/*/status`],
      stdout: "piped",
    }).output();
    const pinned = new Set<string>();
    for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
      const list = /Cpus_allowed_list:\s*(\S+)/.exec(line)?.[1] ?? "";
      if (/^\d+$/.test(list)) pinned.add(list);
    }
    const cpus = navigator.hardwareConcurrency;
    assertEquals(pinned, new Set(cpus >= 2 ? ["0", "1"] : ["0"]));
    await m.close();
  },
});
