// Hostile files in and around a WAL (issue 18, items 4, 7, 8, 9): what the module did not make
// is never deleted, a FIFO is refused instead of opened, and a manifest with a valid checksum
// but bad contents is skipped as an invalid checkpoint, never followed.
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import {
  type CheckpointMetadata,
  chooseCheckpoint,
  readCheckpoint,
  verifyCheckpointFiles,
} from "../src/checkpoint_store.ts";
import { crc32c } from "../src/crc32c.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { type DenoRun, ignoreWithoutUring, runDeno, smallConfig, tempDir } from "./_helpers.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

/** A 1-core WAL with a few records and `checkpoints` checkpoints; returns its paths. */
async function walWithCheckpoints(
  root: string,
  checkpoints: number,
  before?: (checkpointDir: string) => void,
): Promise<{ wal: string; ckpt: string; metas: CheckpointMetadata[] }> {
  const config = smallConfig(root);
  await using m = await PerCoreWalManager.open(config);
  const coordinator = new CheckpointCoordinator(m, { retain: 10 });
  Deno.mkdirSync(coordinator.checkpointDir, { recursive: true });
  before?.(coordinator.checkpointDir);
  const metas: CheckpointMetadata[] = [];
  for (let i = 0; i < checkpoints; i++) {
    const w = m.writer(0);
    for (let k = 0; k < 20; k++) w.appendPut(`k${i}-${k}`, `v${i}-${k}`);
    await w.sync();
    metas.push(await coordinator.checkpoint({ state: new TextEncoder().encode(`app ${i}`) }));
  }
  return { wal: config.baseDir, ckpt: coordinator.checkpointDir, metas };
}

// Item 4 ------------------------------------------------------------------------------------

test("a checkpoint deletes only its own leftovers (ckpt-NNNNNNNNNN.tmp), never the application's *.tmp", async () => {
  await using dir = await tempDir();
  const outside = `${dir.path}/outside`;
  Deno.mkdirSync(outside);
  Deno.writeTextFileSync(`${outside}/precious`, "keep me");
  const { ckpt } = await walWithCheckpoints(dir.path, 1, (ckpt) => {
    Deno.mkdirSync(`${ckpt}/build.tmp/obj`, { recursive: true });
    Deno.writeTextFileSync(`${ckpt}/build.tmp/obj/a.o`, "object");
    Deno.writeTextFileSync(`${ckpt}/cache.tmp`, "cache");
    Deno.mkdirSync(`${ckpt}/ckpt-7.tmp`); // not a name the module writes (no padding)
    Deno.mkdirSync(`${ckpt}/ckpt-0000000003.tmp.tmp`);
    // Named like a leftover, but a symbolic link: never followed, what it names is untouched.
    Deno.symlinkSync(outside, `${ckpt}/ckpt-0000000009.tmp`);
    // A real leftover of an interrupted checkpoint: removed.
    Deno.mkdirSync(`${ckpt}/ckpt-0000000005.tmp`);
    Deno.writeTextFileSync(`${ckpt}/ckpt-0000000005.tmp/state.kv`, "partial");
  });
  assertEquals(Deno.readTextFileSync(`${ckpt}/build.tmp/obj/a.o`), "object");
  assertEquals(Deno.readTextFileSync(`${ckpt}/cache.tmp`), "cache");
  assert(Deno.statSync(`${ckpt}/ckpt-7.tmp`).isDirectory);
  assert(Deno.statSync(`${ckpt}/ckpt-0000000003.tmp.tmp`).isDirectory);
  assertEquals(Deno.readTextFileSync(`${outside}/precious`), "keep me");
  assert(Deno.lstatSync(`${ckpt}/ckpt-0000000009.tmp`).isSymlink);
  assertThrows(() => Deno.lstatSync(`${ckpt}/ckpt-0000000005.tmp`), Deno.errors.NotFound);
});

test("cleanupOldCheckpoints removes only the module's leftovers and old checkpoints", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path);
  await using m = await PerCoreWalManager.open(config);
  const coordinator = new CheckpointCoordinator(m);
  await coordinator.checkpoint();
  const ckpt = coordinator.checkpointDir;
  Deno.mkdirSync(`${ckpt}/build.tmp`);
  Deno.writeTextFileSync(`${ckpt}/cache.tmp`, "cache");
  Deno.mkdirSync(`${ckpt}/ckpt-0000000005.tmp`);
  assertEquals(await coordinator.cleanupOldCheckpoints(1), 1);
  assert(Deno.statSync(`${ckpt}/build.tmp`).isDirectory);
  assertEquals(Deno.readTextFileSync(`${ckpt}/cache.tmp`), "cache");
});

// Items 7, 8, 9: helpers ----------------------------------------------------------------------

const CHILD = new URL("./_hostile_child.ts", import.meta.url).pathname;
const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** Runs `deno run -A <args>`, killed after 5 s: a call that blocks fails instead of hanging. */
function runWithTimeout(args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", ...args], 5000);
}

/** What the child's call returned or threw. */
async function inChild(action: "open" | "recover", dir: string): Promise<Record<string, unknown>> {
  const r = await runWithTimeout([CHILD, action, dir]);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

/** Replaces `path` with a FIFO (mkfifo). */
async function makeFifo(path: string): Promise<void> {
  Deno.removeSync(path);
  const out = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert(out.success, "mkfifo");
}

/** Rewrites a checkpoint's manifest with `edit` applied to its JSON, under a valid CRC32C. */
function rewriteManifest(ckptPath: string, edit: (j: Record<string, unknown>) => void): void {
  const path = `${ckptPath}/manifest.json`;
  const text = Deno.readTextFileSync(path);
  const j = JSON.parse(text.slice(0, text.lastIndexOf("\n", text.length - 2)));
  edit(j);
  const body = JSON.stringify(j, null, 2);
  const crc = crc32c(new TextEncoder().encode(body)).toString(16).padStart(8, "0");
  Deno.writeTextFileSync(path, `${body}\n${crc}\n`);
}

// Item 7 ------------------------------------------------------------------------------------

test("a FIFO in place of wal.json: open() and recovery refuse it at once, naming it", async () => {
  await using dir = await tempDir();
  const { wal } = await walWithCheckpoints(dir.path, 1);
  await makeFifo(`${wal}/wal.json`);
  for (const action of ["open", "recover"] as const) {
    const r = await inChild(action, wal);
    assertEquals([r.ok, r.walError, r.code], [false, true, "Unsafe"], JSON.stringify(r));
    assertMatch(String(r.message), new RegExp(`"${wal}/wal.json" is a FIFO`));
    assert((r.elapsedMs as number) < 1000, `${action} took ${r.elapsedMs} ms`);
  }
  const cli = await runWithTimeout([CLI, "inspect", wal]);
  assertEquals(cli.code, 1);
  assertMatch(cli.stderr, /wal\.json" is a FIFO/);
});

test("a FIFO in place of a checkpoint's manifest.json or state.kv: recovery skips that checkpoint as invalid, naming the file", async () => {
  for (const file of ["manifest.json", "state.kv", "app.bin"]) {
    await using dir = await tempDir();
    const { wal, metas } = await walWithCheckpoints(dir.path, 2);
    await makeFifo(`${metas[1].path}/${file}`);
    const r = await inChild("recover", wal);
    assertEquals([r.ok, r.checkpoint], [true, 1], `${file}: ${JSON.stringify(r)}`);
    const report = r.report as { path: string; status: string; reason?: string }[];
    assertEquals(report[0].path, metas[1].path);
    assertEquals(report[0].status, "invalid");
    assertMatch(report[0].reason!, file === "manifest.json" ? /is a FIFO/ : /not a regular file/);
    // Exit 1: a checkpoint is invalid; listed with its reason.
    const cli = await runWithTimeout([CLI, "checkpoints", wal]);
    assertEquals(cli.code, 1, cli.stderr);
    assertMatch(cli.stdout, /ckpt-0000000002 +invalid: .*(FIFO|regular file)/);
    const verify = await runWithTimeout([CLI, "verify", wal]);
    assertEquals(verify.code, 1, verify.stdout + verify.stderr);
  }
});

test("wal dump of a FIFO is refused at once", async () => {
  await using dir = await tempDir();
  const fifo = `${dir.path}/wal-0-000000.log`;
  Deno.writeTextFileSync(fifo, "");
  await makeFifo(fifo);
  const r = await runWithTimeout([CLI, "dump", fifo]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /not a regular file/);
});

// Item 8 ------------------------------------------------------------------------------------

test("a manifest naming a file outside its checkpoint (../../dev/zero) is invalid and never read", async () => {
  const hostile = [
    "../../../../../../dev/zero",
    "/dev/zero",
    "sub/state.kv",
    "..",
    "manifest.json",
    "STATE.KV",
  ];
  for (const name of hostile) {
    await using dir = await tempDir();
    const { wal, ckpt, metas } = await walWithCheckpoints(dir.path, 2);
    rewriteManifest(metas[1].path, (j) => {
      (j.files as { name: string; size: number; crc32c: number }[]).push({
        name,
        size: 0,
        crc32c: 0,
      });
    });
    const r = await inChild("recover", wal);
    assertEquals([r.ok, r.checkpoint], [true, 1], `${name}: ${JSON.stringify(r)}`);
    const report = r.report as { status: string; reason?: string }[];
    assertEquals(report[0].status, "invalid");
    assertMatch(report[0].reason!, /manifest is invalid/);
    const cli = await runWithTimeout([CLI, "checkpoints", wal, "--checkpoint-dir", ckpt]);
    assertEquals(cli.code, 1, cli.stderr);
    assertMatch(cli.stdout, /ckpt-0000000002 +invalid: manifest is invalid: files\[2\] names/);
  }
});

test("a checkpoint file larger or smaller than its manifest states is invalid, read no further than stated", async () => {
  await using dir = await tempDir();
  const { metas } = await walWithCheckpoints(dir.path, 1);
  const app = `${metas[0].path}/app.bin`;
  const bytes = Deno.readFileSync(app);
  const meta = readCheckpoint(metas[0].path) as CheckpointMetadata;
  // The size the manifest states, a byte more, a byte less: only the first passes.
  assertEquals(verifyCheckpointFiles(meta), undefined);
  Deno.writeFileSync(app, new Uint8Array([...bytes, 0]));
  assertMatch(verifyCheckpointFiles(meta)!, /app\.bin holds more than/);
  Deno.writeFileSync(app, bytes.subarray(1));
  assertMatch(verifyCheckpointFiles(meta)!, /app\.bin ends at/);
  assertMatch((readCheckpoint(metas[0].path) as { invalid: string }).invalid, /app\.bin has/);
  // A symbolic link in a file's place is not followed.
  Deno.removeSync(app);
  Deno.symlinkSync("/dev/zero", app);
  assertMatch((readCheckpoint(metas[0].path) as { invalid: string }).invalid, /regular file/);
  assertMatch(verifyCheckpointFiles(meta)!, /is a symbolic link/);
});

// Item 9 ------------------------------------------------------------------------------------

test("a manifest with a field of the wrong type is skipped as invalid, with a reason; recovery uses the previous checkpoint", async () => {
  const edits: [string, (j: Record<string, unknown>) => void][] = [
    ["files null", (j) => j.files = null],
    ["files an object", (j) => j.files = { name: "state.kv" }],
    ["a file's size a string", (j) => (j.files as { size: unknown }[])[0].size = "12"],
    ["a file's size negative", (j) => (j.files as { size: unknown }[])[0].size = -1],
    ["walPositions null", (j) => j.walPositions = null],
    ["a position's offset a string", (j) => {
      (j.walPositions as { offset: unknown }[])[0].offset = "8192";
    }],
    ["a position's sequence a number", (j) => {
      (j.walPositions as { sequence: unknown }[])[0].sequence = 5;
    }],
    ["epoch not a number", (j) => j.epoch = "x"],
    ["offsets null", (j) => j.offsets = null],
    ["an offset not a number", (j) => j.offsets = { src: "abc" }],
    ["watermarks an array", (j) => j.watermarks = ["1"]],
    ["id a string", (j) => j.id = "2"],
    ["hasAppState a string", (j) => j.hasAppState = "yes"],
    ["createdAt not a date", (j) => j.createdAt = "never"],
    ["previousId a string", (j) => j.previousId = "1"],
  ];
  for (const [what, edit] of edits) {
    await using dir = await tempDir();
    const { wal, metas } = await walWithCheckpoints(dir.path, 2);
    rewriteManifest(metas[1].path, edit);
    const m = readCheckpoint(metas[1].path);
    assert("invalid" in m, `${what}: accepted`);
    assertMatch((m as { invalid: string }).invalid, /manifest/, what);
    const chosen = chooseCheckpoint(`${dir.path}/wal/checkpoints`);
    assertEquals(chosen.checkpoint?.id, 1, what);
    assertEquals(chosen.checkpointReport[0].status, "invalid", what);
    using r = await recoverPerCore(wal, { readOnly: true });
    assertEquals(r.checkpoint?.id, 1, what);
    assertEquals(r.state.size, 40, what);
  }
});

test("a checkpoint directory that is a symbolic link is invalid, never followed", async () => {
  await using dir = await tempDir();
  const { wal, ckpt, metas } = await walWithCheckpoints(dir.path, 1);
  // Another WAL's (or anyone's) checkpoint, linked in as the newest.
  Deno.renameSync(metas[0].path, `${dir.path}/elsewhere`);
  Deno.symlinkSync(`${dir.path}/elsewhere`, `${ckpt}/ckpt-0000000002`);
  assertMatch(
    (readCheckpoint(`${ckpt}/ckpt-0000000002`) as { invalid: string }).invalid,
    /symbolic link/,
  );
  using r = await recoverPerCore(wal, { readOnly: true });
  assertEquals(r.checkpoint, undefined);
  assertEquals(r.checkpointReport[0].status, "invalid");
});
