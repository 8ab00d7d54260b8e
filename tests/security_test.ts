// Security: file and directory modes, symbolic links, and the Deno permissions the module needs
// (checked in `deno run` subprocesses with scoped flags; `deno eval` would grant everything).
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig, type PerCoreWalOptions } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { ignoreWithoutUring, readCore, tempDir } from "./_helpers.ts";

const SMALL: PerCoreWalOptions = { segmentSizeBytes: 64 * 1024 };

async function umask(): Promise<number> {
  const out = await new Deno.Command("sh", { args: ["-c", "umask"] }).output();
  return parseInt(new TextDecoder().decode(out.stdout).trim(), 8);
}

/** Creates a WAL with records and a checkpoint, and returns the modes of what it created. */
async function modes(dir: string, options: PerCoreWalOptions): Promise<Record<string, number>> {
  const m = await PerCoreWalManager.open(new PerCoreWalConfig(`${dir}/wal`, 1, options));
  m.writer(0).appendPut("k", "v");
  await m.syncAll();
  const meta = await new CheckpointCoordinator(m, { retain: 1 }).checkpoint({
    state: new Uint8Array([1]),
  });
  await m.close();
  const mode = (p: string) => Deno.statSync(p).mode! & 0o777;
  return {
    "wal/": mode(`${dir}/wal`),
    "wal/wal-0-000000.log": mode(`${dir}/wal/wal-0-000000.log`),
    "wal/wal.json": mode(`${dir}/wal/wal.json`),
    "wal/wal.lock": mode(`${dir}/wal/wal.lock`),
    "checkpoints/": mode(`${dir}/wal/checkpoints`),
    "checkpoints/ckpt-N/": mode(meta.path),
    "checkpoints/ckpt-N/manifest.json": mode(`${meta.path}/manifest.json`),
    "checkpoints/ckpt-N/state.kv": mode(`${meta.path}/state.kv`),
    "checkpoints/ckpt-N/app.bin": mode(`${meta.path}/app.bin`),
  };
}

Deno.test({
  name: "files are created 0600 and directories 0700 by default",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const got = await modes(dir.path, SMALL);
    const mask = await umask();
    for (const [name, mode] of Object.entries(got)) {
      assertEquals(mode, (name.endsWith("/") ? 0o700 : 0o600) & ~mask, name);
    }
  },
});

Deno.test({
  name: "fileMode sets the mode of every file, and directories get search where read is set",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const got = await modes(dir.path, { ...SMALL, fileMode: 0o640 });
    const mask = await umask();
    for (const [name, mode] of Object.entries(got)) {
      assertEquals(mode, (name.endsWith("/") ? 0o750 : 0o640) & ~mask, name);
    }
  },
});

Deno.test({
  name: "a baseDir that is a symbolic link is refused with Unsafe unless allowSymlinks",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    Deno.mkdirSync(`${dir.path}/real`);
    Deno.symlinkSync(`${dir.path}/real`, `${dir.path}/wal`);
    const err = await assertRejects(
      () => PerCoreWalManager.open(new PerCoreWalConfig(`${dir.path}/wal`, 1, SMALL)),
      PerCoreWalError,
      `WAL directory "${dir.path}/wal" is a symbolic link (to "${dir.path}/real")`,
    );
    assertEquals(err.code, "Unsafe");
    assertEquals(err.segment, `${dir.path}/wal`);
    assertEquals([...Deno.readDirSync(`${dir.path}/real`)].length, 0, "nothing was created");
    // Allowed: the files go into the link's target.
    const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, { ...SMALL, allowSymlinks: true });
    const m = await PerCoreWalManager.open(config);
    m.writer(0).appendPut("k", "v");
    await m.syncAll();
    await m.close();
    assert(Deno.statSync(`${dir.path}/real/wal-0-000000.log`).isFile);
    assertEquals((await readCore(config)).length, 1);
    // Recovery refuses it too (its configuration comes from wal.json, without allowSymlinks).
    const rec = await assertRejects(() => recoverPerCore(`${dir.path}/wal`), PerCoreWalError);
    assertEquals(rec.code, "Unsafe");
  },
});

Deno.test({
  name: "a segment file that is a symbolic link is refused with Unsafe naming it",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, SMALL);
    const m = await PerCoreWalManager.open(config);
    m.writer(0).appendPut("k", "v");
    await m.syncAll();
    await m.close();
    const seg = `${dir.path}/wal/wal-0-000000.log`;
    Deno.renameSync(seg, `${dir.path}/elsewhere.log`);
    Deno.symlinkSync(`${dir.path}/elsewhere.log`, seg);
    const err = await assertRejects(
      () => PerCoreWalManager.open(config),
      PerCoreWalError,
      `Segment "${seg}" is a symbolic link`,
    );
    assertEquals(err.code, "Unsafe");
    assertEquals(err.segment, seg);
    const rec = await assertRejects(() => recoverPerCore(`${dir.path}/wal`), PerCoreWalError);
    assertEquals(rec.code, "Unsafe");
  },
});

/** Runs the scoped script with `deno run` and exactly `flags`; returns its exit code and output. */
async function runScoped(flags: string[], dir: string, backend: string) {
  const path = `${dir}/script.ts`;
  Deno.writeTextFileSync(
    path,
    SCOPED_SCRIPT.replaceAll("SRC/", new URL("../src/", import.meta.url).href),
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...flags, path, `${dir}/data`, backend],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return `${dec.decode(out.stdout)}${dec.decode(out.stderr)}`.trim();
}

/** The module's directory, from which the core Workers load src/ and ffi/. */
const SRC = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

const SCOPED_SCRIPT = `
import { PerCoreWalConfig } from "SRC/config.ts";
import { PerCoreWalManager } from "SRC/manager.ts";
import { CheckpointCoordinator } from "SRC/checkpoint.ts";
import { recoverPerCore } from "SRC/recovery.ts";
const [dir, backend] = Deno.args;
try {
  const m = await PerCoreWalManager.open(
    new PerCoreWalConfig(dir + "/wal", 2, { segmentSizeBytes: 65536, backend }),
  );
  m.writer(0).appendPut("a", "1");
  m.writer(1).appendPut("b", "2");
  await m.syncAll();
  await new CheckpointCoordinator(m).checkpoint();
  const backends = m.metrics().map((x) => x.backend).join(",");
  await m.close();
  using r = await recoverPerCore(dir + "/wal");
  console.log("ok", backends, r.state.size);
} catch (e) {
  console.log("error", e.name, e.code ?? "", e.message);
}
`;

Deno.test({
  name:
    "io_uring works with --allow-ffi, write scoped to the data directory, read to it and the module",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const data = `${dir.path}/data`;
    Deno.mkdirSync(data);
    const flags = ["--allow-ffi", `--allow-read=${data},${SRC}`, `--allow-write=${data}`];
    assertEquals(await runScoped(flags, dir.path, "io_uring"), "ok io_uring,io_uring 2");
  },
});

Deno.test({
  name: "the sync backend needs no --allow-ffi: the same scoped read and write suffice",
  async fn() {
    await using dir = await tempDir();
    const data = `${dir.path}/data`;
    Deno.mkdirSync(data);
    const flags = [`--allow-read=${data},${SRC}`, `--allow-write=${data}`];
    assertEquals(await runScoped(flags, dir.path, "sync"), "ok sync,sync 2");
    // "auto" without --allow-ffi falls back to the sync backend.
    Deno.removeSync(data, { recursive: true });
    Deno.mkdirSync(data);
    assertEquals(await runScoped(flags, dir.path, "auto"), "ok sync,sync 2");
  },
});

Deno.test({
  name: "without write permission on the directory the error says which permission is missing",
  async fn() {
    await using dir = await tempDir();
    const data = `${dir.path}/data`;
    Deno.mkdirSync(data);
    const out = await runScoped([`--allow-read=${data},${SRC}`], dir.path, "sync");
    assertStringIncludes(out, "error PerCoreWalError Io");
    assertStringIncludes(out, "--allow-write");
  },
});

Deno.test({
  name: "without read permission on the module's own directory, open says to add it",
  async fn() {
    await using dir = await tempDir();
    const data = `${dir.path}/data`;
    Deno.mkdirSync(data);
    const out = await runScoped(
      [`--allow-read=${data}`, `--allow-write=${data}`],
      dir.path,
      "sync",
    );
    assertStringIncludes(out, "error PerCoreWalError Unsupported The core Workers load");
    assertStringIncludes(out, `--allow-read=<wal dir>,${SRC}`);
  },
});

Deno.test({
  name: "a checkpoint directory that is a symbolic link is refused with Unsafe",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    Deno.mkdirSync(`${dir.path}/real`);
    Deno.mkdirSync(`${dir.path}/wal`);
    Deno.symlinkSync(`${dir.path}/real`, `${dir.path}/wal/checkpoints`);
    await using m = await PerCoreWalManager.open(new PerCoreWalConfig(`${dir.path}/wal`, 1, SMALL));
    m.writer(0).appendPut("k", "v");
    const err = await assertRejects(
      () => new CheckpointCoordinator(m).checkpoint(),
      PerCoreWalError,
      `Checkpoint directory "${dir.path}/wal/checkpoints" is a symbolic link`,
    );
    assertEquals(err.code, "Unsafe");
    assertEquals([...Deno.readDirSync(`${dir.path}/real`)].length, 0);
  },
});
