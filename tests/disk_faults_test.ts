// Disk faults: ENOSPC on a real, size-limited tmpfs (or, where mounting is not allowed, through
// the fault-injecting backend), a short write at the ENOSPC boundary on a real ring, and EIO on
// fdatasync: the core fails hard, every waiter rejects, no fdatasync is retried, and what was
// acknowledged is recovered.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { FaultyBackend, FaultyUringBackend } from "../src/io/faulty.ts";
import { SyncBackend } from "../src/io/sync.ts";
import { UringBackend } from "../src/io/uring.ts";
import type { IoBackend } from "../src/io/backend.ts";
import { PerCoreRecoveryManager } from "../src/recovery.ts";
import {
  appendUntilError,
  asPut,
  BACKENDS,
  ignoreWithoutUring,
  readCore,
  smallConfig,
  smallFs,
  tempDir,
  URING_UNAVAILABLE,
} from "./_helpers.ts";

const KiB = 1024;

const value = (i: number) => new Uint8Array(2000).fill(1 + (i % 250));

/** The backend tests use: a real ring when there is one, else the synchronous backend. */
function realBackend(): IoBackend {
  return URING_UNAVAILABLE === undefined
    ? new UringBackend({ ringEntries: 64 })
    : new SyncBackend();
}

Deno.test("ENOSPC: appends and sync() reject with Io and the errno, nothing acknowledged is lost, and the WAL works again once space is freed and it is reopened", async () => {
  await using fs = await smallFs(2 * 1024 * KiB);
  let config: PerCoreWalConfig;
  let inner: IoBackend;
  let io: IoBackend;
  if (fs.mounted) {
    // A real full file system. Segment preparation (fallocate and zero-fill) runs out first.
    config = new PerCoreWalConfig(`${fs.path}/wal`, 1, {
      segmentSizeBytes: 256 * KiB,
      writeMode: "buffered",
    });
    inner = io = realBackend();
    // Space to free later.
    await Deno.writeFile(`${fs.path}/filler`, new Uint8Array(512 * KiB));
  } else {
    console.error(
      `tmpfs cannot be mounted here (${fs.why}): ENOSPC is injected by FaultyBackend instead`,
    );
    config = smallConfig(fs.path, { writeMode: "buffered" });
    inner = realBackend();
    io = new FaultyBackend(inner, { failWriteAt: 12, errno: 28 });
  }
  const log = await CoreLog.open(config, 0, { backend: io });
  const { acked, error } = await appendUntilError(log, (i) => value(i), 2000);
  if (!(error instanceof PerCoreWalError)) throw new Error(`no ENOSPC: ${error}`);
  assertEquals([error.code, error.errno], ["Io", "ENOSPC"], error.message);
  assert(acked > 0, "something was acknowledged before the disk filled");
  // What was appended and not acknowledged either becomes durable or is reported lost.
  await log.close().catch((e) => {
    assert(e instanceof PerCoreWalError && e.errno === "ENOSPC", String(e));
  });
  if (fs.mounted) await Deno.remove(`${fs.path}/filler`);
  const again = await CoreLog.open(config, 0, { backend: inner });
  const n = Number(again.sequence);
  assert(n >= acked, `${n} records after reopening, ${acked} were acknowledged`);
  again.appendPut(`k-${n + 1}`, value(n + 1));
  await again.sync();
  await again.close();
  await inner.close();
  const entries = await readCore(config);
  assertEquals(entries.length, n + 1);
  for (let i = 0; i < entries.length; i++) {
    assertEquals(entries[i].sequence, i + 1);
    assertEquals(asPut(entries[i].operation).value, value(i + 1), `record ${i + 1}`);
  }
});

Deno.test({
  name:
    "a short write at the ENOSPC boundary of a real file system: the ring's remainder is resubmitted and fails with ENOSPC at the offset reached",
  ignore: ignoreWithoutUring,
  fn: async () => {
    await using fs = await smallFs(1024 * KiB);
    if (!fs.mounted) {
      console.error(`tmpfs cannot be mounted here (${fs.why}): the short write is not exercised`);
      return;
    }
    // Leave 16 KiB free (tmpfs counts pages), then write 64 KiB without fallocate.
    await Deno.writeFile(`${fs.path}/filler`, new Uint8Array(1024 * KiB - 16 * KiB));
    const io = new UringBackend({ ringEntries: 8 });
    const file = io.openFile(`${fs.path}/data`, {
      createNew: true,
      direct: false,
      dsync: false,
      mode: 0o600,
    });
    const buf = io.allocBuffer(64 * KiB);
    buf.fill(7);
    try {
      const e = await assertRejects(
        () => io.writeParts(file, [{ data: buf, offset: 0 }], true),
        PerCoreWalError,
      );
      assertEquals([e.code, e.errno, e.operation], ["Io", "ENOSPC", "write"]);
      // The kernel wrote a part (a short write); the backend went on from there.
      assert(e.offset !== undefined && e.offset > 0 && e.offset < 64 * KiB, e.message);
      const st = await Deno.stat(`${fs.path}/data`);
      assertEquals(st.size, e.offset);
    } finally {
      io.freeBuffer(buf);
      io.closeFile(file);
      await io.close();
    }
  },
});

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `[${backend}] EIO on fdatasync: the core fails hard, every waiter rejects, no fdatasync is retried, and recovery returns every acknowledged record`,
    ignore: backend === "io_uring" && ignoreWithoutUring,
    fn: async () => {
      await using dir = await tempDir();
      const config = smallConfig(dir.path, { backend, writeMode: "buffered" });
      const inner = backend === "io_uring"
        ? new UringBackend({ ringEntries: 64 })
        : new SyncBackend();
      const io = new FaultyBackend(inner, { failSyncAt: 3, errno: 5 });
      const log = await CoreLog.open(config, 0, { backend: io });
      const put = (i: number) => log.appendPut(`k-${i}`, value(i));
      for (let i = 1; i <= 5; i++) put(i);
      await log.sync();
      for (let i = 6; i <= 10; i++) put(i);
      await log.sync();
      for (let i = 11; i <= 15; i++) put(i);
      const third = log.sync();
      for (let i = 16; i <= 20; i++) put(i);
      const fourth = log.sync();
      const waiters = await Promise.allSettled([third, fourth, log.waitDurable(12)]);
      for (const w of waiters) {
        if (w.status !== "rejected") {
          throw new Error("a waiter after the failed fdatasync resolved");
        }
        if (!(w.reason instanceof PerCoreWalError)) throw w.reason;
        assertEquals([w.reason.code, w.reason.errno], ["Io", "EIO"]);
      }
      assertEquals(log.durableSequence, 10);
      assertEquals(log.failure?.errno, "EIO");
      // Failed hard: no more appends, syncs reject, and no fdatasync is ever submitted again.
      const e = (() => {
        try {
          put(21);
        } catch (x) {
          return x;
        }
      })();
      assert(e instanceof PerCoreWalError && e.errno === "EIO", String(e));
      await assertRejects(() => log.sync(), PerCoreWalError);
      await assertRejects(() => log.close(), PerCoreWalError);
      assertEquals(io.calls.map((c) => c.chain), [1, 2, 3, 4]);
      assertEquals(io.injected, 1);
      await inner.close();
      // Recovery: every acknowledged record, exactly as written; anything after them is a
      // prefix of what was appended (the failed batch's bytes may have reached the file).
      using r = await new PerCoreRecoveryManager(config, { readOnly: true }).recoverWalOnly();
      for (let i = 1; i <= 10; i++) assertEquals(r.state.get(`k-${i}`), value(i), `k-${i}`);
      const entries = await readCore(config);
      assert(entries.length >= 10 && entries.length <= 20, `${entries.length} records`);
      for (let i = 0; i < entries.length; i++) {
        assertEquals(entries[i].sequence, i + 1);
        assertEquals(asPut(entries[i].operation).value, value(i + 1));
      }
    },
  });
}

Deno.test({
  name:
    "EAGAIN from io_uring_submit (test hook): the queued SQEs are submitted again and the chain (writes and fdatasync) completes",
  ignore: ignoreWithoutUring,
  fn: async () => {
    await using dir = await tempDir();
    const io = new FaultyUringBackend({ ringEntries: 8, eagainSubmits: 3 });
    const path = `${dir.path}/data`;
    const file = io.openFile(path, { createNew: true, direct: false, dsync: false, mode: 0o600 });
    const buf = io.allocBuffer(8 * KiB);
    buf.fill(9);
    try {
      await io.writeParts(file, [{ data: buf, offset: 0 }], true);
      assertEquals(io.submitRetries, 3);
      assertEquals(await Deno.readFile(path), new Uint8Array(8 * KiB).fill(9));
    } finally {
      io.freeBuffer(buf);
      io.closeFile(file);
      await io.close();
    }
  },
});
