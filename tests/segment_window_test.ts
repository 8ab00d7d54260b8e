// Segments that cost nothing until used (docs/PERFORMANCE.md, "segment life cycle"): a segment
// file gets its full size as a sparse file and only a window ahead of the writer is laid out.
// Disk use is read from the files' allocated blocks (`stat` blocks × 512) on the real disk.
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { FaultyBackend } from "../src/io/faulty.ts";
import { UringBackend } from "../src/io/uring.ts";
import { SyncBackend } from "../src/io/sync.ts";
import type { IoFile, WritePart, WritePurpose } from "../src/io/backend.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { firstWindowBytes, layoutTarget, MAX_LAYOUT_STEP_BYTES } from "../src/segment_window.ts";
import { asPut, BACKENDS, ignoreWithoutUring, readCore, tempDir } from "./_helpers.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Bytes allocated on disk to the files under `dir` (recursively). */
function allocatedBytes(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) n += allocatedBytes(path);
    else if (e.isFile) n += (Deno.statSync(path).blocks ?? 0) * 512;
  }
  return n;
}

const value = (i: number, n: number) => new Uint8Array(n).fill(i & 0xff);

/** Lets the background preparations of a log settle (not a timing: a state is waited for). */
async function settled(log: CoreLog): Promise<void> {
  while (log.preparing) await new Promise((r) => setTimeout(r, 1));
}

Deno.test("window arithmetic: 1/64 of a segment first (16 KiB to 1 MiB), doubling ahead of the writer up to 16 MiB a step, never past the segment", () => {
  assertEquals(firstWindowBytes(64 * MiB), MiB);
  assertEquals(firstWindowBytes(256 * KiB), 16 * KiB);
  assertEquals(firstWindowBytes(8 * KiB), 8 * KiB);
  assertEquals(firstWindowBytes(4 * MiB), 64 * KiB);
  // Far enough ahead: nothing to do.
  assertEquals(layoutTarget(MiB, 100 * KiB, 64 * MiB, false), MiB);
  // Less than half a step ahead: one more step (the window doubles).
  assertEquals(layoutTarget(MiB, 600 * KiB, 64 * MiB, false), 2 * MiB);
  // Data past the window: a step from the data's end, on a 4 KiB boundary.
  assertEquals(layoutTarget(MiB, 3 * MiB + 10, 64 * MiB, false), 4 * MiB + 4096);
  // Steps stop doubling at 16 MiB, and the segment's end bounds everything.
  assertEquals(layoutTarget(32 * MiB, 31 * MiB, 64 * MiB, false), 32 * MiB + MAX_LAYOUT_STEP_BYTES);
  assertEquals(layoutTarget(60 * MiB, 59 * MiB, 64 * MiB, false), 64 * MiB);
  assertEquals(layoutTarget(64 * MiB, 64 * MiB, 64 * MiB, false), 64 * MiB);
  // A sealed segment lays out only what its last batches need.
  assertEquals(layoutTarget(MiB, MiB + 10, 64 * MiB, true), MiB + 4096);
  assertEquals(layoutTarget(MiB, MiB - 10, 64 * MiB, true), MiB);
});

Deno.test({
  name:
    "a fresh 2-core manager with default options holds at most 16 MiB on disk, with 2,000 records in it",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const wal = `${dir.path}/wal`;
    const manager = await PerCoreWalManager.open(wal, { cores: 2 });
    const opened = allocatedBytes(wal);
    assert(opened <= 16 * MiB, `${opened} bytes on disk after open`);
    for (let core = 0; core < 2; core++) {
      const w = manager.writer(core);
      for (let i = 0; i < 1000; i++) w.appendPut(`k-${i}`, value(i, 100));
      await w.sync();
    }
    const used = allocatedBytes(wal);
    assert(used <= 16 * MiB, `${used} bytes on disk with 2,000 records`);
    await manager.close();
    assert(allocatedBytes(wal) <= 16 * MiB, "after close");
    // The segments keep their full size (sparse): the reading rules that rely on it still hold.
    const config = new PerCoreWalConfig(wal, 2);
    for (let core = 0; core < 2; core++) {
      for (const s of listCoreSegments(config, core)) {
        assertEquals(Deno.statSync(s.path).size, 64 * MiB, s.path);
      }
      assertEquals((await readCore(config, core)).length, 1000);
    }
  },
});

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `[${backend}] open() lays out only the first window of a segment; data written far past it reads back after reopen`,
    ignore: backend === "io_uring" && ignoreWithoutUring,
    async fn() {
      await using dir = await tempDir();
      const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, {
        segmentSizeBytes: 8 * MiB,
        segmentFill: "zeros",
        backend,
      });
      const log = await CoreLog.open(config, 0);
      const seg0 = config.segmentPath(0, 0);
      assertEquals(Deno.statSync(seg0).size, 8 * MiB);
      const window = firstWindowBytes(8 * MiB);
      assertEquals((Deno.statSync(seg0).blocks ?? 0) * 512, window, "only the first window");
      // 6 MiB of records, in batches that run ahead of the window: every one waits for its
      // layout, none is lost.
      let n = 0;
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 256; i++) log.appendPut(`k-${++n}`, value(n, 4000));
        await log.sync();
      }
      await log.close();
      const blocks = (Deno.statSync(seg0).blocks ?? 0) * 512;
      assert(blocks >= 6 * MiB, `${blocks} bytes laid out`);
      const again = await CoreLog.open(config, 0);
      assertEquals(again.sequence, n);
      again.appendPut(`k-${++n}`, value(n, 4000));
      await again.sync();
      await again.close();
      const entries = await readCore(config);
      assertEquals(entries.length, n);
      for (const [i, e] of entries.entries()) {
        assertEquals(asPut(e.operation).value, value(i + 1, 4000), `record ${i + 1}`);
      }
    },
  });
}

Deno.test({
  name:
    "a failed layout ahead of the writer holds its batches back: sync() rejects, the core is not failed, the next append lays it out again and nothing acknowledged is lost",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, {
      segmentSizeBytes: 4 * MiB,
      segmentFill: "zeros",
    });
    const inner = new UringBackend({ ringEntries: 64 });
    // Preparation fdatasyncs: segment 0 at open, segment 1 prepared ahead, then the first layout
    // of more of segment 0.
    const io = new FaultyBackend(inner, { failPrepareAt: 3, errno: 5 });
    try {
      const log = await CoreLog.open(config, 0, { backend: io });
      await settled(log);
      for (let i = 1; i <= 10; i++) log.appendPut(`k-${i}`, value(i, 1000));
      await log.sync(); // within the first window (64 KiB)
      for (let i = 11; i <= 110; i++) log.appendPut(`k-${i}`, value(i, 1000));
      const e = await assertRejects(() => log.sync(), PerCoreWalError);
      assertEquals([e.code, e.errno], ["Io", "EIO"]);
      assertEquals(io.injected, 1);
      assertEquals(log.failure, undefined, "a failed layout does not fail the core");
      assertEquals(log.durableSequence, 10);
      // The next append is refused and starts the layout again; the one after goes through.
      assertThrows(() => log.appendPut("refused", "x"), PerCoreWalError);
      await settled(log);
      log.appendPut("k-111", value(111, 1000));
      await log.sync();
      assertEquals(log.durableSequence, 111);
      await log.close();
    } finally {
      await inner.close();
    }
    const entries = await readCore(config);
    assertEquals(entries.length, 111);
    for (const [i, e] of entries.entries()) {
      assertEquals(asPut(e.operation).value, value(i + 1, 1000), `record ${i + 1}`);
    }
  },
});

/** The sync backend, with the preparation fdatasync of one file held until `release()`. */
class HoldingBackend extends SyncBackend {
  held: string | undefined;
  #gate = Promise.withResolvers<void>();

  release(): void {
    this.#gate.resolve();
  }

  override async writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: boolean,
    purpose?: WritePurpose,
  ): Promise<void> {
    if (purpose === "prepare" && sync && file.path === this.held) await this.#gate.promise;
    return super.writeParts(file, parts, sync);
  }
}

Deno.test("segment N + 1's file is created only once N's preparation is durable, even when the log rotates into N + 1 before", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, {
    segmentSizeBytes: 16 * KiB,
    backend: "sync",
  });
  const io = new HoldingBackend();
  io.held = config.segmentPath(0, 1);
  const log = await CoreLog.open(config, 0, { backend: io });
  // Fill segment 0 and segment 1 (whose preparation is held) and rotate into segment 2.
  let n = 0;
  while (log.position.segment < 2) log.appendPut(`k-${++n}`, value(n, 1000));
  const durable = log.sync();
  await new Promise((r) => setTimeout(r, 0)); // let what can run, run
  assert(Deno.statSync(config.segmentPath(0, 1)).size > 0, "segment 1 is being prepared");
  assertThrows(
    () => Deno.statSync(config.segmentPath(0, 2)),
    Deno.errors.NotFound,
    undefined,
    "segment 2 waits for segment 1's preparation",
  );
  io.release();
  await durable;
  assertEquals(log.durableSequence, n);
  await log.close();
  const entries = await readCore(config);
  assertEquals(entries.map((e) => e.sequence), Array.from({ length: n }, (_, i) => i + 1));
  assert(listCoreSegments(config, 0).length >= 3);
});
