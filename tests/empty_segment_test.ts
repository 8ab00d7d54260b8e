/**
 * A segment truncated to 0 bytes. The writer creates segment N + 1 only once N's preparation (its
 * full size included) is durable, so an empty file before a laid-out segment (started or not) can
 * only be a truncation: `open()`, recovery in every mode and `wal verify` call it damage the same
 * way (FORMAT.md section 8). An empty file with nothing laid out after it is a segment whose
 * creation a crash interrupted: never started.
 */

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import type { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import type { RecoveryMode } from "../src/recovery_types.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { ignoreWithoutUring, smallConfig, tempDir, walVerify } from "./_helpers.ts";

const REFUSING: RecoveryMode[] = ["tolerateTornTail", "strict"];
const RECORDS = 1500;

/** A one-core WAL over several 32 KiB segments, and a prepared (all-zero) segment after them. */
async function build(dir: string): Promise<{ config: PerCoreWalConfig; started: number }> {
  const config = smallConfig(dir, { segmentSizeBytes: 32 * 1024 });
  {
    await using m = await PerCoreWalManager.open(config);
    const w = m.writer(0);
    for (let i = 0; i < RECORDS; i++) w.appendPut(`key-${i}`, `value-${i}`);
    await w.sync();
  }
  const segs = listCoreSegments(config, 0);
  const last = segs[segs.length - 1];
  const head = new Uint8Array(64);
  using f = Deno.openSync(last.path);
  f.readSync(head);
  let started = segs.length;
  if (head.every((b) => b === 0)) started--;
  else {
    // The segment the writer prepares ahead: full size, all zeros.
    using g = Deno.openSync(config.segmentPath(0, last.index + 1), { write: true, create: true });
    g.truncateSync(config.options.segmentSizeBytes);
  }
  assert(started >= 3, `${started} started segments`);
  return { config, started };
}

/** Every reader of the directory refuses (or, salvaging, reports) the emptied segment. */
async function expectDamage(config: PerCoreWalConfig, emptied: string): Promise<void> {
  const v = await walVerify(config.baseDir);
  assertEquals(v.code, 1, v.text);
  assertStringIncludes(v.text, emptied);
  for (const mode of REFUSING) {
    const e = await assertRejects(
      () => recoverPerCore(config.baseDir, { mode, checkpointDir: false, readOnly: true }),
      PerCoreWalError,
      emptied,
      mode,
    );
    assertEquals((e as PerCoreWalError).code, "Corrupted", mode);
  }
  // The modes that go on past damage report it.
  for (const mode of ["pointInTime", "salvage"] as const) {
    using r = await recoverPerCore(config.baseDir, { mode, checkpointDir: false, readOnly: true });
    const line = r.report.find((s) => s.path === emptied);
    const reported = line !== undefined && ["corrupted", "missing"].includes(line.status) &&
      line.action !== "none";
    // Point in time stops before the first damaged epoch (here the first: one epoch only).
    const stopped = mode === "pointInTime" && r.stoppedBeforeEpoch !== undefined;
    assert(reported || stopped, `${mode}: ${JSON.stringify(r.report)}`);
  }
  const e = await assertRejects(() => PerCoreWalManager.open(config), PerCoreWalError, emptied);
  assertEquals((e as PerCoreWalError).code, "Corrupted");
  // Refused, nothing removed: the emptied file and every segment after it are still there.
  assertEquals(Deno.statSync(emptied).size, 0);
}

for (const which of ["first", "second", "last started"] as const) {
  Deno.test({
    name: `the ${which} segment truncated to 0 bytes before a laid-out one is damage for ` +
      `open(), every recovery mode and wal verify`,
    ignore: ignoreWithoutUring,
    async fn() {
      await using dir = await tempDir();
      const { config, started } = await build(dir.path);
      const index = which === "first" ? 0 : which === "second" ? 1 : started - 1;
      const emptied = config.segmentPath(0, index);
      Deno.truncateSync(emptied, 0);
      const before = listCoreSegments(config, 0).map((s) => s.path);
      await expectDamage(config, emptied);
      // Every started segment is still there (open() may remove the prepared one: never started).
      const after = listCoreSegments(config, 0).map((s) => s.path);
      assertEquals(after, before.slice(0, Math.max(after.length, started)));
    },
  });
}

Deno.test({
  name: "an empty last segment (a crash while creating it) is a segment never started",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const { config, started } = await build(dir.path);
    // The prepared segment's creation was cut short: its file exists, empty.
    Deno.truncateSync(config.segmentPath(0, started), 0);
    const v = await walVerify(config.baseDir);
    assertEquals(v.code, 0, v.text);
    for (const mode of [...REFUSING, "pointInTime", "salvage"] as const) {
      using r = await recoverPerCore(config.baseDir, {
        mode,
        checkpointDir: false,
        readOnly: true,
      });
      assertEquals(r.state.size, RECORDS, mode);
    }
    await using m = await PerCoreWalManager.open(config);
    assertEquals(m.positions()[0].sequence, RECORDS);
  },
});
