// How new segments are laid out (`segmentFill`): zero-filled, or fallocated only (unwritten
// extents, a sparse file without fallocate), or chosen by the recent batch size. Extents are read
// with `filefrag -v` (FIEMAP) on the real files the real ring wrote; durability is checked by
// reading back after reopening, and by the power-loss simulator with fallocated-only segments.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { CoreLog, listCoreSegments } from "../src/core_log.ts";
import { PerCoreWalConfig, type SegmentFill } from "../src/config.ts";
import { asPut, BACKENDS, ignoreWithoutUring, readCore, str, tempDir } from "./_helpers.ts";
import { simulate } from "./_power_loss_sim.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Whether `filefrag` (e2fsprogs) runs here and the temp dir's file system reports extents. */
const FILEFRAG = await (async () => {
  const dir = await Deno.makeTempDir({ prefix: "percore-wal-filefrag-" });
  try {
    const path = `${dir}/probe`;
    await Deno.writeFile(path, new Uint8Array(4096));
    return (await blockStates(path)).length === 1;
  } catch {
    return false;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
})();

/**
 * One entry per file-system block of `path`: "written", "unwritten" (fallocated, reads as zeros)
 * or "hole" (no block), from `filefrag -v`. Unwritten extents are what `segmentFill: "allocate"`
 * leaves; a zero-filled segment has written blocks only.
 */
async function blockStates(path: string): Promise<("written" | "unwritten" | "hole")[]> {
  const out = await new Deno.Command("filefrag", { args: ["-v", path], stdout: "piped" }).output();
  if (!out.success) throw new Error(`filefrag -v ${path} failed`);
  const text = new TextDecoder().decode(out.stdout);
  const size = /\((\d+) blocks? of (\d+) bytes\)/.exec(text);
  if (size === null) throw new Error(`no block count in filefrag's output: ${text}`);
  const states = new Array<"written" | "unwritten" | "hole">(Number(size[1])).fill("hole");
  for (const line of text.split("\n")) {
    const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):.*?:\s*(\d+):(.*)$/.exec(line);
    if (m === null) continue;
    const kind = m[4].includes("unwritten") ? "unwritten" : "written";
    for (let b = Number(m[1]); b <= Number(m[2]) && b < states.length; b++) states[b] = kind;
  }
  return states;
}

function count<T>(xs: T[], x: T): number {
  return xs.filter((y) => y === x).length;
}

function config(
  dir: string,
  segmentFill: SegmentFill,
  segmentSizeBytes = MiB,
  backend: "io_uring" | "sync" = "io_uring",
): PerCoreWalConfig {
  return new PerCoreWalConfig(`${dir}/wal`, 1, { segmentSizeBytes, segmentFill, backend });
}

const value = (i: number, n: number) => new Uint8Array(n).fill(i & 0xff);

Deno.test("segmentFill defaults to auto; anything but auto, zeros or allocate is a RangeError", () => {
  assertEquals(new PerCoreWalConfig("/tmp/x", 1).options.segmentFill, "auto");
  assertEquals(
    new PerCoreWalConfig("/tmp/x", 1, { segmentFill: "allocate" }).options.segmentFill,
    "allocate",
  );
  const e = assertThrows(
    () => new PerCoreWalConfig("/tmp/x", 1, { segmentFill: "zero" as SegmentFill }),
    RangeError,
  );
  assert(
    e.message.includes("segmentFill must be one of auto, zeros, allocate, got zero"),
    e.message,
  );
});

Deno.test({
  name:
    'segmentFill "allocate": the WAL writes only its data; the rest of the segment stays unwritten extents',
  ignore: ignoreWithoutUring || !FILEFRAG,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path, "allocate");
    const log = await CoreLog.open(cfg, 0);
    assertEquals(log.writeMode, "direct");
    for (let i = 0; i < 50; i++) log.appendPut(`k-${i}`, value(i, 1000));
    await log.sync();
    const dataEnd = log.syncedPosition.offset;
    await log.close();
    const [seg0] = listCoreSegments(cfg, 0);
    assertEquals((await Deno.stat(seg0.path)).size, MiB);
    const states = await blockStates(seg0.path);
    const dataBlocks = Math.ceil(dataEnd / 4096);
    assertEquals(states.length, MiB / 4096);
    // The header block and the batches: written. Everything after them: never written by the WAL.
    assertEquals(states.slice(0, dataBlocks), new Array(dataBlocks).fill("written"));
    assertEquals(count(states.slice(dataBlocks), "unwritten"), states.length - dataBlocks);
    // They read as zeros: the reader stops at the end of the data, every record is there.
    const entries = await readCore(cfg);
    assertEquals(
      entries.map((e) => Number(e.sequence)),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
  },
});

Deno.test({
  name: 'segmentFill "zeros": every block of a prepared segment is written before use',
  ignore: ignoreWithoutUring || !FILEFRAG,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path, "zeros");
    const log = await CoreLog.open(cfg, 0);
    log.appendPut("k", "v");
    await log.close();
    // Segment 0 (started) and segment 1 (prepared ahead, never started).
    const segs = listCoreSegments(cfg, 0);
    assertEquals(segs.map((s) => s.index), [0, 1]);
    for (const s of segs) {
      const states = await blockStates(s.path);
      assertEquals(count(states, "written"), MiB / 4096, s.path);
    }
  },
});

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `[${backend}] segmentFill "allocate": reopening continues in the allocated segment and loses nothing`,
    ignore: backend === "io_uring" && ignoreWithoutUring,
    async fn() {
      await using dir = await tempDir();
      const cfg = config(dir.path, "allocate", 256 * KiB, backend);
      let expected = 0;
      // Three opens, each appending across rotations (256 KiB segments, 3 KiB records).
      for (let round = 0; round < 3; round++) {
        const log = await CoreLog.open(cfg, 0);
        assertEquals(log.sequence, BigInt(expected));
        for (let i = 0; i < 150; i++) {
          log.appendPut(`k-${expected + 1}`, value(expected + 1, 3000));
          expected++;
          if (i % 16 === 15) await log.sync();
        }
        await log.close();
      }
      const entries = await readCore(cfg);
      assertEquals(entries.length, expected);
      for (const [i, e] of entries.entries()) {
        assertEquals(Number(e.sequence), i + 1);
        const op = asPut(e.operation);
        assertEquals(str(op.key), `k-${i + 1}`);
        assertEquals(op.value, value(i + 1, 3000));
      }
      const segs = listCoreSegments(cfg, 0);
      assert(segs.length >= 6, "the appends rotated through several segments");
      // The sync backend has no fallocate: its segments get their size from ftruncate (sparse).
      for (const s of segs) assertEquals((await Deno.stat(s.path)).size, 256 * KiB);
    },
  });
}

/** Appends `records` 4 KiB records, `sync()` every `perSync`, 8 syncs outstanding at most. */
async function writeBatches(log: CoreLog, records: number, perSync: number): Promise<void> {
  const pending: Promise<void>[] = [];
  for (let i = 0; i < records; i++) {
    log.appendPut(`k-${i}`, value(i, 4000));
    if (i % perSync === perSync - 1) {
      pending.push(log.sync());
      if (pending.length >= 8) await pending.shift();
    }
  }
  await Promise.all(pending);
}

Deno.test({
  name:
    'segmentFill "auto": after large batches the next segment is fallocated only, after small ones zero-filled',
  ignore: ignoreWithoutUring || !FILEFRAG,
  async fn() {
    for (const [perSync, expected] of [[128, "unwritten"], [1, "written"]] as const) {
      await using dir = await tempDir();
      const cfg = config(dir.path, "auto", 2 * MiB);
      const log = await CoreLog.open(cfg, 0);
      // Segments 0 and 1 are prepared at open, before any batch: zero-filled. Fill segment 0 and
      // start segment 1: segment 2, prepared then, follows the batches written into segment 0.
      await writeBatches(log, 600, perSync);
      await log.close();
      const segs = listCoreSegments(cfg, 0);
      assertEquals(segs.map((s) => s.index), [0, 1, 2], `${perSync} per sync`);
      assertEquals(count(await blockStates(segs[0].path), "unwritten"), 0);
      const states = await blockStates(segs[2].path);
      assertEquals(count(states, expected), states.length, `${perSync} record(s) per sync`);
    }
  },
});

Deno.test('power loss with fallocated-only segments (segmentFill "allocate"): acknowledged records survive, crash tails are cut (20 seeds)', async () => {
  for (let seed = 1; seed <= 20; seed++) {
    await using dir = await tempDir();
    const r = await simulate(seed, dir.path, undefined, "allocate");
    assert(r.recordsAcknowledged > 0, `seed ${seed} acknowledged nothing`);
  }
});
