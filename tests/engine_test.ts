// Behaviour of one core's engine, on both backends: the io_uring ring on real files, and the
// synchronous backend. Faults a disk will not produce on demand go through FaultyBackend.
import {
  assert,
  assertEquals,
  assertGreater,
  assertLess,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import type { IoBackend, IoFile, WritePart, WritePurpose } from "../src/io/backend.ts";
import { FaultyBackend, FaultyUringBackend } from "../src/io/faulty.ts";
import { errnoError } from "../ffi/errno.ts";
import { SyncBackend } from "../src/io/sync.ts";
import { UringBackend } from "../src/io/uring.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import {
  asPut,
  BACKENDS,
  ignoreWithoutUring,
  readCore,
  smallConfig,
  str,
  tempDir,
  utf8,
} from "./_helpers.ts";

function makeBackend(kind: "io_uring" | "sync"): IoBackend {
  return kind === "io_uring" ? new UringBackend({ ringEntries: 64 }) : new SyncBackend();
}

for (const backend of BACKENDS) {
  const ignore = backend === "io_uring" && ignoreWithoutUring;
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `[${backend}] ${name}`, ignore, fn });

  test("every operation appended and synced reads back in order with its sequence", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend });
    const log = await CoreLog.open(config, 0);
    assertEquals(log.backend, backend);
    const seqs = [
      log.appendPut("k1", "v1"),
      log.appendDelete(utf8("k0")),
      log.appendCheckpoint(7),
      log.appendCommit({ src: 10 }, 99),
      log.appendCommit(new Map([["a", 1], ["b", 2]])),
      log.appendEpochBarrier(),
      log.append({ type: "put", key: "k2", value: new Uint8Array([0, 1, 2]) }),
    ];
    assertEquals(seqs, [1, 2, 3, 4, 5, 6, 7]);
    await log.sync();
    assertEquals(log.durableSequence, 7);
    await log.close();
    const entries = await readCore(config);
    assertEquals(entries.map((e) => e.sequence), seqs);
    assertEquals(entries.map((e) => e.operation.type), [
      "put",
      "delete",
      "checkpoint",
      "commit",
      "commit",
      "epochBarrier",
      "put",
    ]);
    const put = asPut(entries[0].operation);
    assertEquals([str(put.key), str(put.value)], ["k1", "v1"]);
    assertEquals(entries[3].operation, {
      type: "commit",
      offsets: new Map([["src", 10]]),
      watermark: 99,
    });
    for (let i = 1; i < entries.length; i++) {
      assert(entries[i].timestampNs >= entries[i - 1].timestampNs, "timestamps never go backwards");
    }
    const now = BigInt(Date.now()) * 1_000_000n;
    assertLess(now - entries[0].timestampNs, 60_000_000_000n, "timestamps are wall clock");
  });

  test("rotation spreads records over segments; sequences continue across them", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend, segmentSizeBytes: 64 * 1024 });
    const log = await CoreLog.open(config, 0);
    const value = new Uint8Array(300).fill(7);
    for (let i = 0; i < 2000; i++) {
      log.appendPut(`key-${i}`, value);
      if (i % 100 === 99) await log.sync();
    }
    await log.close();
    const segs = listCoreSegments(config, 0);
    assertGreater(segs.length, 8);
    const entries = await readCore(config);
    assertEquals(entries.length, 2000);
    entries.forEach((e, i) => assertEquals(e.sequence, i + 1));
    // Each segment's header names its first sequence, continuing the previous segment.
    let next = 1;
    for (const s of segs) {
      await using r = await PerCoreWalReader.open(s.path);
      if (r.header === undefined) continue; // the preallocated next segment
      assertEquals(r.header.firstSequence, next);
      for await (const _ of r) next++;
    }
  });

  test("reopen continues sequences, epoch and timestamps after the last record", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend });
    let log = await CoreLog.open(config, 0);
    log.setEpoch(5);
    log.appendPut("a", "1");
    log.appendPut("b", "2");
    await log.close();
    log = await CoreLog.open(config, 0);
    assertEquals(log.sequence, 2);
    assertEquals(log.durableSequence, 2);
    assertEquals(log.epoch, 5);
    assertEquals(log.appendPut("c", "3"), 3);
    await log.close();
    log = await CoreLog.open(config, 0);
    assertEquals(log.appendPut("d", "4"), 4);
    await log.close();
    const entries = await readCore(config);
    assertEquals(entries.map((e) => [e.sequence, e.epoch]), [[1, 5], [2, 5], [3, 5], [
      4,
      5,
    ]]);
    assertEquals(listCoreSegments(config, 0).length, 2, "one segment in use, one preallocated");
  });

  test("a log opened and closed without a record reopens (no segment is ever started)", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend });
    await (await CoreLog.open(config, 0)).close();
    await (await CoreLog.open(config, 0)).close();
    const log = await CoreLog.open(config, 0);
    assertEquals(log.appendPut("a", "1"), 1);
    await log.close();
    assertEquals((await readCore(config)).length, 1);
  });

  test("sync() of many concurrent callers shares batches (group commit)", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend, maxInFlightBatches: 2 });
    const log = await CoreLog.open(config, 0);
    const done = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const seq = log.appendPut(`k${i}`, "v");
      await log.sync();
      assert(log.durableSequence >= seq);
      return seq;
    }));
    assertEquals(done.length, 200);
    const m = log.metrics();
    assertLess(m.batches, 200, `${m.batches} batches for 200 syncs`);
    assert(m.fdatasyncs <= m.batches);
    assertEquals(m.recordsAppended, 200);
    await log.close();
    assertEquals((await readCore(config)).length, 200);
  });

  test("sync() resolves only after the fdatasync covering the records completed", async () => {
    await using dir = await tempDir();
    const inner = makeBackend(backend);
    const spy = new SyncSpy(inner);
    const config = smallConfig(dir.path, { backend });
    const log = await CoreLog.open(config, 0, { backend: spy });
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) log.appendPut(`k${round}-${i}`, "v");
      const syncsBefore = spy.completedDataSyncs;
      await log.sync();
      assertGreater(
        spy.completedDataSyncs,
        syncsBefore,
        `round ${round}: resolved before a sync completed`,
      );
      assertEquals(spy.outstandingDataChains, 0);
    }
    await log.close();
    await inner.close();
  });

  test("waitDurable(sequence) resolves once that record is durable; a future one is a RangeError", async () => {
    await using dir = await tempDir();
    const log = await CoreLog.open(smallConfig(dir.path, { backend }), 0);
    const s1 = log.appendPut("a", "1");
    await log.waitDurable(s1);
    assert(log.durableSequence >= s1);
    await assertRejects(() => log.waitDurable(s1 + 1), RangeError);
    await assertRejects(() => log.waitDurable(1n as unknown as number), TypeError);
    assertEquals(log.syncedPosition.sequence, 1);
    await log.close();
  });

  test("a record above maxRecordBytes is refused with RecordTooLarge and loses nothing", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend, maxRecordBytes: 4096 });
    const log = await CoreLog.open(config, 0);
    log.appendPut("a", "1");
    const e = assertThrows(() => log.appendPut("big", new Uint8Array(5000)), PerCoreWalError);
    assertEquals(e.code, "RecordTooLarge");
    assertEquals(
      log.appendPut("b", new Uint8Array(4096 - 41)),
      2,
      "the refused record took no sequence",
    );
    await log.close();
    assertEquals((await readCore(config)).map((x) => x.sequence), [1, 2]);
  });

  test("records larger than a batch buffer are written whole", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, {
      backend,
      maxBatchBytes: 4096,
      segmentSizeBytes: 1 << 20,
    });
    const log = await CoreLog.open(config, 0);
    const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
    log.appendPut("small", "x");
    log.appendPut("big", big);
    log.appendPut("small2", "y");
    await log.sync();
    await log.close();
    const entries = await readCore(config);
    assertEquals(asPut(entries[1].operation).value, big);
    assertEquals(entries.length, 3);
  });

  test("appends beyond maxPendingBytes throw Backpressure until sync() drains them", async () => {
    await using dir = await tempDir();
    const log = await CoreLog.open(
      smallConfig(dir.path, { backend, maxPendingBytes: 1 << 20, segmentSizeBytes: 4 << 20 }),
      0,
    );
    const value = new Uint8Array(1000);
    let accepted = 0;
    let err: unknown;
    try {
      for (let i = 0; i < 5000; i++) {
        log.appendPut(`k${i}`, value);
        accepted++;
      }
    } catch (e) {
      err = e;
    }
    assert(err instanceof PerCoreWalError && err.code === "Backpressure", String(err));
    assertGreater(accepted, 900);
    await log.sync();
    log.appendPut("after", value);
    await log.close();
  });

  test("appends and syncs after close() fail with Closed; close() is idempotent", async () => {
    await using dir = await tempDir();
    const log = await CoreLog.open(smallConfig(dir.path, { backend }), 0);
    log.appendPut("a", "1");
    await Promise.all([log.close(), log.close()]);
    await log.close();
    assertEquals(assertThrows(() => log.appendPut("b", "2"), PerCoreWalError).code, "Closed");
    await log.sync(); // nothing pending: resolves
    assertEquals(
      (await assertRejects(
        () => log.waitDurable(1).then(() => log.appendDelete("x")),
        PerCoreWalError,
      )).code,
      "Closed",
    );
  });

  test("an fdatasync that fails with EIO fails the core: every waiter rejects, nothing is retried, acknowledged records stay readable", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend, maxInFlightBatches: 1 });
    const inner = makeBackend(backend);
    const faulty = new FaultyBackend(inner, { failSyncAt: 3, errno: 5 });
    const log = await CoreLog.open(config, 0, { backend: faulty });
    log.appendPut("a", "1");
    await log.sync(); // chain 1
    log.appendPut("b", "2");
    await log.sync(); // chain 2
    log.appendPut("c", "3");
    const p1 = log.sync(); // chain 3: fails
    log.appendPut("d", "4");
    const p2 = log.sync();
    const e1 = await assertRejects(() => p1, PerCoreWalError);
    assertEquals([e1.code, e1.errno, e1.operation], ["Io", "EIO", "fdatasync"]);
    assertEquals(await assertRejects(() => p2, PerCoreWalError), e1);
    assertEquals(assertThrows(() => log.appendPut("e", "5"), PerCoreWalError), e1);
    assertEquals(await assertRejects(() => log.sync(), PerCoreWalError), e1);
    assertEquals(log.durableSequence, 2);
    assertEquals(faulty.injected, 1);
    await assertRejects(() => log.close(), PerCoreWalError);
    await inner.close();
    // Reopened with a healthy backend: the acknowledged records are there, and it goes on.
    const again = await CoreLog.open(config, 0);
    const seqs = (await readCore(config)).map((x) => x.sequence);
    assertEquals(seqs.slice(0, 2), [1, 2]);
    again.appendPut("f", "6");
    await again.close();
  });

  test("a write that fails with ENOSPC rejects the waiters with the errno; reopened, the log goes on", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend });
    const inner = makeBackend(backend);
    const log = await CoreLog.open(config, 0, {
      backend: new FaultyBackend(inner, { failWriteAt: 2, errno: 28 }),
    });
    log.appendPut("a", "1");
    await log.sync();
    log.appendPut("b", "2");
    const e = await assertRejects(() => log.sync(), PerCoreWalError);
    assertEquals([e.code, e.errno], ["Io", "ENOSPC"]);
    await log.close().catch(() => {});
    await inner.close();
    const again = await CoreLog.open(config, 0);
    assertEquals(again.sequence, 1);
    assertEquals(again.appendPut("c", "3"), 2);
    await again.close();
    assertEquals((await readCore(config)).length, 2);
  });

  test("a torn batch write is cut on reopen and the log continues after the last whole record", async () => {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, { backend });
    const inner = makeBackend(backend);
    const log = await CoreLog.open(config, 0, {
      backend: new FaultyBackend(inner, { tearWriteAt: 2, errno: 5 }),
    });
    log.appendPut("a", "1");
    await log.sync();
    for (let i = 0; i < 100; i++) log.appendPut(`k${i}`, new Uint8Array(100).fill(1));
    await assertRejects(() => log.sync(), PerCoreWalError);
    await log.close().catch(() => {});
    await inner.close();
    const again = await CoreLog.open(config, 0);
    const kept = again.sequence;
    assert(kept >= 1 && kept < 101, `kept ${kept}`);
    again.appendPut("next", "x");
    await again.close();
    const entries = await readCore(config);
    assertEquals(
      entries.map((x) => x.sequence),
      Array.from({ length: Number(kept) + 1 }, (_, i) => (i + 1)),
    );
  });
}

Deno.test({
  name:
    "[io_uring] short writes from the kernel are resubmitted and nothing is lost or reordered (durable writes, and writes + fdatasync)",
  ignore: ignoreWithoutUring,
  async fn() {
    // Batches of about 75 KiB go as durable writes, of about 250 KiB as writes and an fdatasync.
    for (const every of [300, 1000]) {
      await using dir = await tempDir();
      const config = smallConfig(dir.path, {
        backend: "io_uring",
        writeMode: "direct",
        segmentSizeBytes: 1 << 20,
      });
      const inner = new FaultyUringBackend({ ringEntries: 64, shortWriteEvery: 2 });
      const log = await CoreLog.open(config, 0, { backend: inner });
      const value = new Uint8Array(200).fill(3);
      for (let i = 0; i < 3000; i++) {
        log.appendPut(`k${i}`, value);
        if (i % every === every - 1) await log.sync();
      }
      const m = log.metrics();
      await log.close();
      await inner.close();
      if (every === 300) assertEquals(m.fdatasyncs, 0);
      else assert(m.fdatasyncs > 0, "the large batches were written with an fdatasync");
      const entries = await readCore(config);
      assertEquals(entries.length, 3000);
      entries.forEach((e, i) => assertEquals(e.sequence, i + 1));
    }
  },
});

Deno.test({
  name:
    "[io_uring] direct mode writes a batch of up to 128 KiB with durable writes, a larger one with an fdatasync",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, {
      backend: "io_uring",
      writeMode: "direct",
      segmentSizeBytes: 4 * 1024 * 1024,
    });
    const io = new FaultyBackend(new UringBackend({ ringEntries: 64 }), { errno: 0 });
    const log = await CoreLog.open(config, 0, { backend: io });
    try {
      log.appendPut("small", "v");
      await log.sync();
      const value = new Uint8Array(1000).fill(7);
      for (let i = 0; i < 200; i++) log.appendPut(`big${i}`, value); // about 200 KiB
      await log.sync();
      log.appendPut("small again", "v");
      await log.sync();
      // The real ring took RWF_DSYNC writes (an EINVAL would have failed the log).
      assertEquals(io.calls.map((c) => c.sync), ["dsync", true, "dsync"]);
      const m = log.metrics();
      assertEquals([m.batches, m.fdatasyncs], [3, 1]);
      assertEquals(log.durableSequence, 202);
    } finally {
      await log.close();
      await io.close();
    }
    const entries = await readCore(config);
    assertEquals(entries.length, 202);
    assertEquals(new TextDecoder().decode(asPut(entries[201].operation).key), "small again");
  },
});

Deno.test({
  name: "[io_uring] writeMode direct and dsync both write readable, aligned batches",
  ignore: ignoreWithoutUring,
  async fn() {
    for (const writeMode of ["direct", "dsync", "buffered"] as const) {
      await using dir = await tempDir();
      const config = smallConfig(dir.path, { backend: "io_uring", writeMode });
      const log = await CoreLog.open(config, 0);
      assertEquals(log.writeMode, writeMode);
      for (let i = 0; i < 10; i++) {
        log.appendPut(`k${i}`, "v");
        await log.sync();
      }
      const pos = log.syncedPosition;
      if (writeMode !== "buffered") {
        assertEquals(pos.offset % 4096, 0, "O_DIRECT batches end on 4 KiB");
      }
      await log.close();
      assertEquals((await readCore(config)).length, 10);
    }
  },
});

Deno.test({
  name:
    "writeMode direct where the file system refuses O_DIRECT is Unsupported; auto falls back to buffered",
  ignore: ignoreWithoutUring,
  async fn() {
    // Linux 6.6+ tmpfs accepts O_DIRECT, so the refusal comes from the fault-injecting backend.
    await using dir = await tempDir();
    const inner = new UringBackend({ ringEntries: 16 });
    const noDirect = new FaultyBackend(inner, { errno: 22, refuseDirect: true });
    const e = await assertRejects(
      () => CoreLog.open(smallConfig(dir.path, { writeMode: "direct" }), 0, { backend: noDirect }),
      PerCoreWalError,
    );
    assertEquals(e.code, "Unsupported");
    assert(e.message.includes("O_DIRECT"), e.message);
    const log = await CoreLog.open(smallConfig(dir.path), 0, { backend: noDirect });
    assertEquals(log.writeMode, "buffered");
    log.appendPut("k", "v");
    await log.close();
    await inner.close();
  },
});

Deno.test("the sync backend refuses O_DIRECT write modes clearly", async () => {
  await using dir = await tempDir();
  const e = await assertRejects(
    () => CoreLog.open(smallConfig(dir.path, { backend: "sync", writeMode: "direct" }), 0),
    PerCoreWalError,
  );
  assertEquals(e.code, "Unsupported");
});

Deno.test("CoreLog.open() refuses a core id out of range with InvalidCoreId", async () => {
  await using dir = await tempDir();
  for (const id of [-1, 2, 1.5]) {
    const e = await assertRejects(
      () => CoreLog.open(smallConfig(dir.path, {}, 2), id),
      PerCoreWalError,
    );
    assertEquals(e.code, "InvalidCoreId");
  }
});

Deno.test("CoreLog.open() refuses a baseDir that is a file", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/file`, "x");
  const e = await assertRejects(
    () => CoreLog.open(new PerCoreWalConfig(`${dir.path}/file`, 1), 0),
    PerCoreWalError,
  );
  assertEquals([e.code, e.errno], ["Io", "ENOTDIR"]);
});

Deno.test("a segment of another core placed under this core's name is refused", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path, { backend: "sync" }, 2);
  const log1 = await CoreLog.open(config, 1);
  log1.appendPut("a", "1");
  await log1.close();
  for (const s of listCoreSegments(config, 0)) await Deno.remove(s.path);
  await Deno.rename(config.segmentPath(1, 0), config.segmentPath(0, 0));
  const e = await assertRejects(() => CoreLog.open(config, 0), PerCoreWalError);
  assertEquals(e.code, "Corrupted");
  assert(e.message.includes("header says core 1"), e.message);
});

/** Passes everything to a real backend and counts data chains and their fdatasyncs. */
class SyncSpy extends FaultyBackend {
  completedDataSyncs = 0;
  outstandingDataChains = 0;
  constructor(inner: IoBackend) {
    super(inner, { errno: 0 });
  }
  override async writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: boolean,
    purpose?: WritePurpose,
  ) {
    if (purpose !== "data") return super.writeParts(file, parts, sync, purpose);
    this.outstandingDataChains++;
    try {
      await super.writeParts(file, parts, sync, purpose);
      if (sync) this.completedDataSyncs++;
    } finally {
      this.outstandingDataChains--;
    }
  }
}

/** Holds the first data chain's completion until the second has failed: an fdatasync whose EIO may belong to the first batch's pages. */
class ReorderedFailure extends FaultyBackend {
  #n = 0;
  #releaseFirst: (() => void) | undefined;
  constructor(inner: IoBackend) {
    super(inner, { errno: 5 });
  }
  override async writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: boolean,
    purpose?: WritePurpose,
  ) {
    if (purpose !== "data") return super.writeParts(file, parts, sync, purpose);
    const n = ++this.#n;
    if (n === 2) {
      const p = super.writeParts(file, parts, sync, purpose);
      await new Promise<void>((r) => this.#releaseFirst = r);
      return p;
    }
    if (n === 3) {
      await super.writeParts(file, parts, false, purpose);
      setTimeout(() => this.#releaseFirst?.(), 20);
      throw errnoError(5, "fdatasync", { path: file.path });
    }
    return super.writeParts(file, parts, sync, purpose);
  }
}

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `[${backend}] a batch whose fdatasync succeeds after another batch's failed is not acknowledged`,
    ignore: backend === "io_uring" && ignoreWithoutUring,
    async fn() {
      await using dir = await tempDir();
      const inner = makeBackend(backend);
      const log = await CoreLog.open(smallConfig(dir.path, { backend }), 0, {
        backend: new ReorderedFailure(inner),
      });
      log.appendPut("a", "1");
      await log.sync(); // chain 1
      const s2 = log.appendPut("b", "2");
      const p2 = log.waitDurable(s2); // chain 2: completes late, after chain 3 failed
      const s3 = log.appendPut("c", "3");
      const p3 = log.waitDurable(s3); // chain 3: EIO
      const e3 = await assertRejects(() => p3, PerCoreWalError);
      assertEquals(e3.errno, "EIO");
      await assertRejects(() => p2, PerCoreWalError);
      await new Promise((r) => setTimeout(r, 50));
      assertEquals(log.durableSequence, 1, "nothing after the failure is acknowledged");
      await log.close().catch(() => {});
      await inner.close();
    },
  });
}

Deno.test({
  name: "[io_uring] with O_DIRECT padding no record is written past segmentSizeBytes",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const config = smallConfig(dir.path, {
      backend: "io_uring",
      writeMode: "direct",
      segmentSizeBytes: 16384,
      maxBatchBytes: 4096,
      maxRecordBytes: 4096,
    });
    const log = await CoreLog.open(config, 0);
    for (let i = 0; i < 300; i++) {
      log.appendPut(`k${i}`, new Uint8Array(150 + (i % 7) * 300));
      if (i % 3 === 0) await log.sync();
    }
    await log.close();
    for (const s of listCoreSegments(config, 0)) {
      assert(
        Deno.statSync(s.path).size <= 16384,
        `${s.path} grew to ${Deno.statSync(s.path).size}`,
      );
    }
    assertEquals((await readCore(config)).length, 300);
  },
});

Deno.test("epochs above 2^53 - 1 are refused with RangeError, not rounded", async () => {
  await using dir = await tempDir();
  const log = await CoreLog.open(smallConfig(dir.path, { backend: "sync" }), 0);
  assertThrows(() => log.appendEpochBarrier(2 ** 64 - 1), RangeError);
  assertThrows(() => log.setEpoch(2 ** 53), RangeError);
  // The largest epoch is left for the barrier a checkpoint writes (issue 18, item 6).
  assertThrows(() => log.appendEpochBarrier(2 ** 53 - 1), RangeError);
  assertEquals(log.appendEpochBarrier(2 ** 53 - 2), 1);
  await log.close();
});
