// onEvent: what the WAL did or saw is reported to the application that asked; a failed open
// leaves nothing it created behind.
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { PerCoreWalManager, type WalEvent } from "../mod.ts";
import { places, tailAcrossRotation, zero } from "./_crash_tails.ts";
import { CoreLog } from "../src/core_log.ts";
import { ignoreWithoutUring, runDeno, tempDir } from "./_helpers.ts";

const SMALL = { segmentSizeBytes: 256 * 1024 };
const CHILD = new URL("./_open_child.ts", import.meta.url).pathname;
const SRC = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** Runs _open_child.ts on `dir` with read/write/env permissions (no --allow-ffi). */
async function openWithoutFfi(
  dir: string,
  backend: string,
): Promise<{ error?: string; events: WalEvent[] }> {
  const run = await runDeno([
    "run",
    `--allow-read=${dir},${SRC}`,
    `--allow-write=${dir}`,
    "--allow-env",
    CHILD,
    `${dir}/a/b/wal`,
    backend,
  ]);
  assertEquals(run.code, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split("\n").pop()!);
}

/** A WAL of one core whose last record is torn (its second half never written). */
async function tornWal(dir: string): Promise<{ path: string; seg: string; cutAt: number }> {
  const path = `${dir}/wal`;
  {
    await using m = await PerCoreWalManager.open(path, { ...SMALL, cores: 1 });
    for (let i = 0; i < 3; i++) m.writer(0).appendPut(`k${i}`, "v".repeat(300));
    await m.syncAll();
  }
  const seg = `${path}/wal-0-000000.log`;
  const last = (await places(seg)).at(-1)!;
  // Its header and the start of its key survive; the rest (and the batch padding) never written.
  zero(seg, last.offset + 40, last.offset + last.length);
  return { path, seg, cutAt: last.offset };
}

Deno.test({
  name: "without --allow-ffi, backend auto reports backendFallback with the reason",
  async fn() {
    await using dir = await tempDir();
    const r = await openWithoutFfi(dir.path, "auto");
    assertEquals(r.error, undefined);
    const fallbacks = r.events.filter((e) => e.type === "backendFallback");
    assertEquals(fallbacks.length, 1);
    assertStringIncludes(JSON.stringify(fallbacks[0]).toLowerCase(), "ffi");
  },
});

Deno.test({
  name: "a failed open (backend io_uring without --allow-ffi) leaves no directory it created",
  async fn() {
    await using dir = await tempDir();
    const r = await openWithoutFfi(dir.path, "io_uring");
    assert(r.error !== undefined, "the open should fail");
    assertEquals(await Array.fromAsync(Deno.readDir(dir.path)), []);
  },
});

Deno.test({
  name: "a failed open in an existing directory leaves no wal.json, wal.lock or segment it created",
  async fn() {
    await using dir = await tempDir();
    const wal = `${dir.path}/a/b/wal`;
    await Deno.mkdir(wal, { recursive: true });
    await Deno.writeTextFile(`${wal}/mine.txt`, "the application's own file");
    const r = await openWithoutFfi(dir.path, "io_uring");
    assert(r.error !== undefined, "the open should fail");
    const names = (await Array.fromAsync(Deno.readDir(wal))).map((e) => e.name);
    assertEquals(names, ["mine.txt"]);
  },
});

Deno.test({
  name: "a torn tail cut at open is reported (core, segment, path, offset, bytes)",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const { path, seg, cutAt } = await tornWal(dir.path);
    const events: WalEvent[] = [];
    const size = (await Deno.stat(seg)).size;
    await using m = await PerCoreWalManager.open(path, {
      ...SMALL,
      onEvent: (e) => events.push(e),
    });
    const cuts = events.filter((e) => e.type === "tornTailCut");
    assertEquals(cuts, [{
      type: "tornTailCut",
      coreId: 0,
      segment: 0,
      path: seg,
      offset: cutAt,
      bytes: size - cutAt,
    }]);
    assertEquals((await Array.fromAsync(m.mergeSegments())).length, 2);
  },
});

Deno.test({
  name: "an exception thrown by onEvent is caught: the open succeeds and the WAL works",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const { path } = await tornWal(dir.path);
    let calls = 0;
    const errors: unknown[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    try {
      await using m = await PerCoreWalManager.open(path, {
        ...SMALL,
        onEvent: () => {
          calls++;
          throw new Error("handler bug");
        },
      });
      m.writer(0).appendPut("after", "x");
      await m.syncAll();
      assertEquals((await Array.fromAsync(m.mergeSegments())).length, 3);
    } finally {
      console.error = consoleError;
    }
    assert(calls >= 1);
    assertStringIncludes(String((errors[0] as unknown[])[0]), "onEvent threw");
  },
});

Deno.test({
  name: "a failed core is reported once with its error",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const events: WalEvent[] = [];
    const m = await PerCoreWalManager.open(`${dir.path}/wal`, {
      ...SMALL,
      cores: 2,
      faults: { 1: { failSyncAt: 1, errno: 5 } },
      onEvent: (e) => events.push(e),
    });
    m.writer(1).appendPut("k", "v");
    await assertRejects(() => m.writer(1).sync());
    await assertRejects(() => m.close());
    const failed = events.filter((e) => e.type === "coreFailed");
    assertEquals(failed.length, 1);
    assert(failed[0].type === "coreFailed");
    assertEquals([failed[0].coreId, failed[0].error.errno], [1, "EIO"]);
  },
});

Deno.test({
  name: "a WAL created and reopened cleanly reports no event",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const events: WalEvent[] = [];
    {
      await using m = await PerCoreWalManager.open(`${dir.path}/wal`, {
        ...SMALL,
        cores: 1,
        onEvent: (e) => events.push(e),
      });
      m.writer(0).appendPut("k", "v");
    }
    await using _ = await PerCoreWalManager.open(`${dir.path}/wal`, {
      ...SMALL,
      onEvent: (e) => events.push(e),
    });
    assertEquals(events, []);
  },
});

Deno.test({
  name: "backpressure in a core's Worker (maxPendingBytes reached) is reported begun, then ended",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const events: WalEvent[] = [];
    const balanced = Promise.withResolvers<void>();
    let open = 0;
    await using m = await PerCoreWalManager.open(`${dir.path}/wal`, {
      cores: 1,
      segmentSizeBytes: 4 * 1024 * 1024,
      maxPendingBytes: 1024 * 1024,
      onEvent: (e) => {
        events.push(e);
        if (e.type === "backpressureBegan") open++;
        if (e.type === "backpressureEnded" && --open === 0) balanced.resolve();
      },
    });
    // 6 MiB appended at once: the Worker takes more than maxPendingBytes before any completes.
    const value = new Uint8Array(64 * 1024).fill(7);
    for (let i = 0; i < 96; i++) m.writer(0).appendPut(`k${i}`, value);
    await m.syncAll();
    assertEquals((await Array.fromAsync(m.mergeSegments())).length, 96);
    // The Worker posts its end after its own sync: it may arrive after ours resolved.
    if (open > 0) await balanced.promise;
    const seen = events.filter((e) => e.type.startsWith("backpressure")).map((e) => e.type);
    assert(seen.length >= 2, `no backpressure reported: ${JSON.stringify(events)}`);
    // Each begin is followed by its end.
    for (let i = 0; i < seen.length; i += 2) {
      assertEquals([seen[i], seen[i + 1]], ["backpressureBegan", "backpressureEnded"]);
    }
    const began = events.find((e) => e.type === "backpressureBegan");
    assert(began?.type === "backpressureBegan" && began.coreId === 0 && began.pendingBytes > 0);
  },
});

Deno.test("segments of a crash tail put aside at open are reported with their new names (CoreLog)", async () => {
  await using dir = await tempDir();
  const { config } = await tailAcrossRotation(dir.path, false, "batch");
  const events: WalEvent[] = [];
  const log = await CoreLog.open(config, 0, { onEvent: (e) => events.push(e) });
  await log.close();
  const aside = events.filter((e) => e.type === "segmentsPutAside");
  assertEquals(aside.length, 1);
  assert(aside[0].type === "segmentsPutAside");
  assertEquals(aside[0].coreId, 0);
  assertEquals(aside[0].paths.length, 1);
  assert(aside[0].paths[0].startsWith(`${config.segmentPath(0, 1)}.damaged-`));
  assert((await Deno.stat(aside[0].paths[0])).isFile, "put aside, not deleted");
});

Deno.test("a crash tail from inside an earlier segment: its cut and the later segment put aside are both reported", async () => {
  await using dir = await tempDir();
  const { config, holeOffset } = await tailAcrossRotation(dir.path, false, "sector");
  const seg0 = config.segmentPath(0, 0);
  const size = (await Deno.stat(seg0)).size;
  const events: WalEvent[] = [];
  const log = await CoreLog.open(config, 0, { onEvent: (e) => events.push(e) });
  await log.close();
  assertEquals(events.map((e) => e.type), ["segmentsPutAside", "tornTailCut"]);
  const cut = events[1];
  if (cut.type !== "tornTailCut") throw new Error(`not a cut: ${cut.type}`);
  assertEquals([cut.coreId, cut.segment, cut.path, cut.offset], [0, 0, seg0, holeOffset]);
  assertEquals(cut.bytes, size - holeOffset);
});
