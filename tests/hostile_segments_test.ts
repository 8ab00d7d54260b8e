// Hostile files in a segment's or the lock's place (issue 18, item 7 for segments and wal.lock,
// and "a directory in a segment's place fails the core at rotation with a bare EEXIST"): a FIFO,
// a socket, a device or a symbolic link is refused ("Unsafe", naming the path) at once, never
// opened for reading (a FIFO would block) and never followed.
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { LOCK_FILE, lockWalDirectory, unlockWalDirectory } from "../src/lock.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { hasSegmentHeader, isEmptyFile, isUnstartedSegment } from "../src/segment_files.ts";
import {
  asPut,
  ignoreWithoutUring,
  readCore,
  runDeno,
  smallConfig,
  str,
  tempDir,
} from "./_helpers.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

const CHILD = new URL("./_hostile_child.ts", import.meta.url).pathname;

/** Runs one action of the child, killed after 5 s: a call that blocks fails instead of hanging. */
async function inChild(action: string, path: string): Promise<Record<string, unknown>> {
  const done = await runDeno(["run", "-A", CHILD, action, path], 5000);
  assertEquals(done.code, 0, done.stderr);
  return JSON.parse(done.stdout.trim().split("\n").at(-1)!);
}

/** A closed 1-core WAL with a few records in segment 0; returns its directory. */
async function walWithData(root: string): Promise<string> {
  const config = smallConfig(root);
  await using m = await PerCoreWalManager.open(config);
  const w = m.writer(0);
  for (let k = 0; k < 20; k++) w.appendPut(`k${k}`, `v${k}`);
  await w.sync();
  return config.baseDir;
}

type Kind = "FIFO" | "socket" | "device" | "symbolic link";
const KINDS: readonly Kind[] = ["FIFO", "socket", "device", "symbolic link"];

/**
 * Puts a `kind` in `path`'s place. A symbolic link points to a copy of what was there (a valid
 * segment, outside the WAL directory), so that following it would read well: only refusing it
 * passes.
 */
async function replaceWith(path: string, kind: Kind, outside: string): Promise<void> {
  try {
    Deno.copyFileSync(path, outside);
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (kind === "symbolic link") return Deno.symlinkSync(outside, path);
  if (kind === "socket") {
    // Deno removes its socket file on close: Python's stays behind, as a crashed server's does.
    const bind = `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`;
    const out = await new Deno.Command("python3", { args: ["-c", bind] }).output();
    assert(out.success && Deno.lstatSync(path).isSocket, new TextDecoder().decode(out.stderr));
    return;
  }
  const args = kind === "FIFO" ? [path] : [path, "c", "1", "3"]; // a device: /dev/null's numbers
  const out = await new Deno.Command(kind === "FIFO" ? "mkfifo" : "mknod", { args }).output();
  assert(out.success, `${kind}: ${new TextDecoder().decode(out.stderr)}`);
}

/** Asserts an "Unsafe" refusal naming `path`, within a second. */
function assertUnsafe(r: Record<string, unknown>, path: string, what: string): void {
  assertEquals(
    [r.ok, r.walError, r.code],
    [false, true, "Unsafe"],
    `${what}: ${JSON.stringify(r)}`,
  );
  assert(String(r.message).includes(`"${path}"`), `${what}: ${r.message}`);
  assert((r.elapsedMs as number) < 1000, `${what} took ${r.elapsedMs} ms`);
}

/** What `fn` threw, as the child reports it. */
async function outcome(fn: () => unknown): Promise<Record<string, unknown>> {
  const started = performance.now();
  try {
    await fn();
    return { ok: true, elapsedMs: performance.now() - started };
  } catch (e) {
    return {
      ok: false,
      walError: e instanceof PerCoreWalError,
      code: (e as { code?: string }).code,
      message: String((e as Error).message ?? e),
      elapsedMs: performance.now() - started,
    };
  }
}

test("a FIFO, socket, device or symbolic link in a segment's place: the reader and the segment probes refuse it (Unsafe), never block, never follow", async () => {
  for (const kind of KINDS) {
    await using dir = await tempDir();
    const wal = await walWithData(dir.path);
    const seg = `${wal}/wal-0-000000.log`;
    await replaceWith(seg, kind, `${dir.path}/copy.log`);
    if (kind === "FIFO") {
      // Opening a FIFO for reading blocks the thread: each call runs in a child, killed at 5 s.
      for (const action of ["reader", "unstarted", "header", "empty"]) {
        assertUnsafe(await inChild(action, seg), seg, `${kind}, ${action}`);
      }
      continue;
    }
    const calls: Record<string, () => unknown> = {
      reader: async () => await (await PerCoreWalReader.open(seg)).close(),
      unstarted: () => isUnstartedSegment(seg),
      header: () => hasSegmentHeader(seg),
      empty: () => isEmptyFile(seg),
    };
    for (const [action, fn] of Object.entries(calls)) {
      assertUnsafe(await outcome(fn), seg, `${kind}, ${action}`);
    }
  }
});

test("a FIFO, socket, device or symbolic link in a segment's place: open() and recovery refuse it (Unsafe), naming it", async () => {
  for (const kind of KINDS) {
    await using dir = await tempDir();
    const wal = await walWithData(dir.path);
    const seg = `${wal}/wal-0-000000.log`;
    await replaceWith(seg, kind, `${dir.path}/copy.log`);
    if (kind === "FIFO") {
      for (const action of ["open", "recover"]) {
        assertUnsafe(await inChild(action, wal), seg, `${kind}, ${action}`);
      }
      continue;
    }
    const config = smallConfig(dir.path);
    assertUnsafe(
      await outcome(async () => await (await PerCoreWalManager.open(config)).close()),
      seg,
      `${kind}, open`,
    );
    assertUnsafe(
      await outcome(async () => (await recoverPerCore(wal, { readOnly: true }))[Symbol.dispose]()),
      seg,
      `${kind}, recover`,
    );
  }
});

test("wal.lock replaced by a FIFO, a symbolic link or a directory: the lock is refused at once, naming wal.lock, and a link is never followed", async () => {
  for (const kind of ["FIFO", "symbolic link", "directory", "dangling symbolic link"]) {
    await using dir = await tempDir();
    const wal = await walWithData(dir.path);
    const lock = `${wal}/${LOCK_FILE}`;
    const target = `${dir.path}/elsewhere`;
    Deno.removeSync(lock);
    if (kind === "directory") Deno.mkdirSync(lock);
    else if (kind === "FIFO") await replaceWith(lock, "FIFO", target);
    else {
      if (kind === "symbolic link") Deno.writeTextFileSync(target, "not a lock");
      Deno.symlinkSync(target, lock);
    }
    const r = await inChild("lock", wal);
    assertEquals([r.ok, r.walError], [false, true], `${kind}: ${JSON.stringify(r)}`);
    assert(r.code === "Unsafe" || r.code === "Io", `${kind}: ${JSON.stringify(r)}`);
    assert(String(r.message).includes(`"${lock}"`), `${kind}: ${r.message}`);
    assert((r.elapsedMs as number) < 1000, `${kind} took ${r.elapsedMs} ms`);
    if (kind === "directory") assertMatch(String(r.message), /is a directory/);
    if (kind === "symbolic link") {
      assertEquals(Deno.readTextFileSync(target), "not a lock");
      assert(Deno.lstatSync(lock).isSymlink);
    }
    if (kind === "dangling symbolic link") {
      assertThrows(() => Deno.lstatSync(target), Deno.errors.NotFound); // the link was followed
    }
  }
});

test("a missing wal.lock is created, and a regular one is taken", async () => {
  await using dir = await tempDir();
  const wal = await walWithData(dir.path);
  Deno.removeSync(`${wal}/${LOCK_FILE}`);
  unlockWalDirectory(lockWalDirectory(wal));
  assert(Deno.lstatSync(`${wal}/${LOCK_FILE}`).isFile);
  unlockWalDirectory(lockWalDirectory(wal));
});

test("a directory in the next segment's place: the rotation (or, when the previous segment was not durable yet, the sync after it) is refused naming it (is a directory), the core goes on once it is gone", async () => {
  await using dir = await tempDir();
  const cfg = smallConfig(dir.path);
  const log = await CoreLog.open(cfg, 0);
  // Segment 1 is prepared at open; segment 2 is created once segment 1's preparation is durable
  // and the log rotated into segment 1 (before, the rotation into 2 leaves its batches waiting).
  const inTheWay = cfg.segmentPath(0, 2);
  Deno.mkdirSync(inTheWay);
  const value = new Uint8Array(1000).fill(7);
  let error: unknown;
  let n = 0;
  for (let i = 0; i < 10_000 && error === undefined; i++) {
    try {
      log.appendPut(`k-${n + 1}`, value);
      n++;
    } catch (e) {
      error = e;
    }
  }
  // A loop that never yields ran ahead of segment 1's preparation: segment 2 was created later,
  // and the waits for its records are refused.
  error ??= await log.sync().then(() => undefined, (e) => e);
  if (!(error instanceof PerCoreWalError)) throw new Error(`no error: ${error}`);
  assert(error.code === "Io" || error.code === "Unsafe", error.message);
  assert(error.message.includes(`"${inTheWay}"`), error.message);
  assertMatch(error.message, /is a directory/);
  assertEquals(log.failure, undefined, "a failed preparation does not fail the core");
  assert(Deno.statSync(inTheWay).isDirectory, "what was in the way is left alone");
  // Still in the way: the next append is refused the same way.
  assertMatch(assertThrows(() => log.appendPut("x", value), PerCoreWalError).message, /directory/);
  Deno.removeSync(inTheWay);
  // A segment the log rotated into stalls: the next append tries its preparation again (and is
  // refused with the error that stalled it); its waiting records then go to the disk.
  try {
    log.appendPut("retry", value);
    n++;
  } catch (e) {
    assertMatch((e as Error).message, /directory/);
  }
  log.appendPut(`k-${++n}`, value);
  await log.sync();
  await log.close();
  const entries = await readCore(cfg);
  assertEquals(entries.length, n);
  assertEquals(str(asPut(entries[n - 1].operation).key), `k-${n}`);
});
