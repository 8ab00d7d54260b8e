// Loading is lazy, and every way io_uring can be unavailable gives one error saying which and
// what to do. Child processes run with the permissions or environment under test.
import { assertEquals, assertStringIncludes } from "@std/assert";
import { setupError } from "../src/io/ring.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

const root = new URL("..", import.meta.url).pathname;

/** Runs `code` (which imports MOD) with `deno run` and only the permission flags given. */
async function run(code: string, flags: string[], env: Record<string, string> = {}) {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(script, code.replaceAll("MOD", JSON.stringify(`${root}mod.ts`)));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", ...flags, script],
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: out.code,
      text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(script);
  }
}

Deno.test("importing mod.ts needs no --allow-ffi, and the sync backend works without it", async () => {
  await using dir = await tempDir();
  const r = await run(
    `import { CoreLog, PerCoreWalConfig } from MOD;
     const log = await CoreLog.open(new PerCoreWalConfig(${
      JSON.stringify(dir.path)
    }, 1, { backend: "sync", segmentSizeBytes: 65536 }), 0);
     log.appendPut("k", "v"); await log.sync(); await log.close(); console.log("backend", log.backend);`,
    [`--allow-read=${dir.path}`, `--allow-write=${dir.path}`],
  );
  assertEquals(r.code, 0, r.text);
  assertStringIncludes(r.text, "backend sync");
});

Deno.test("without --allow-ffi, backend auto falls back to sync and says why; io_uring refuses", async () => {
  await using dir = await tempDir();
  const r = await run(
    `import { CoreLog, PerCoreWalConfig } from MOD;
     const cfg = (b) => new PerCoreWalConfig(${
      JSON.stringify(dir.path)
    }, 1, { backend: b, segmentSizeBytes: 65536 });
     const log = await CoreLog.open(cfg("auto"), 0); await log.close();
     console.log("auto:", log.backend, "|", log.fallbackReason);
     try { await CoreLog.open(cfg("io_uring"), 0); } catch (e) { console.log("io_uring:", e.code, e.message); }`,
    [`--allow-read=${dir.path}`, `--allow-write=${dir.path}`],
  );
  assertEquals(r.code, 0, r.text);
  assertStringIncludes(
    r.text,
    "auto: sync | Cannot load liburing: FFI is not allowed (run Deno with --allow-ffi)",
  );
  assertStringIncludes(r.text, "io_uring: Unsupported Cannot load liburing: FFI is not allowed");
});

Deno.test("a missing liburing names the paths tried and the package to install", async () => {
  const r = await run(
    `import { CoreLog, PerCoreWalConfig } from MOD;
     try { await CoreLog.open(new PerCoreWalConfig("/nonexistent-dir-never", 1, { backend: "io_uring" }), 0); }
     catch (e) { console.log(e.code, e.message); }`,
    ["-A"],
    { DENO_LIBURING_PATH: "/nonexistent/liburing.so.2" },
  );
  assertStringIncludes(
    r.text,
    "Unsupported Cannot load liburing (tried /nonexistent/liburing.so.2): install liburing 2.x " +
      "(Debian/Ubuntu: apt-get install liburing2) or set DENO_LIBURING_PATH to liburing.so.2",
  );
});

Deno.test("a refused io_uring_setup explains EPERM, ENOSYS and ENOMEM", () => {
  const eperm = setupError(1);
  assertEquals([eperm.code, eperm.errno, eperm.operation], [
    "Unsupported",
    "EPERM",
    "io_uring_setup",
  ]);
  assertStringIncludes(eperm.message, "kernel.io_uring_disabled");
  assertStringIncludes(eperm.message, "seccomp");
  assertStringIncludes(setupError(38).message, 'backend "sync"');
  assertStringIncludes(setupError(12).message, "ulimit -l");
});

const SYSCTL = "/proc/sys/kernel/io_uring_disabled";

/** Runs a shell command: Deno reads and writes /proc/sys only with --allow-all. */
async function sh(cmd: string): Promise<{ success: boolean; out: string }> {
  const o = await new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped", stderr: "null" })
    .output();
  return { success: o.success, out: new TextDecoder().decode(o.stdout).trim() };
}

const sysctlWritable = (await sh(`test -w ${SYSCTL} && test "$(cat ${SYSCTL})" = 0`)).success;
// The sysctl is machine-wide: for a moment every io_uring_setup on the machine is refused. So it
// runs only when asked (TEST_SYSCTL=1, which .ci/run sets), and then it must be able to.
const TEST_SYSCTL = Deno.env.get("TEST_SYSCTL") === "1";

Deno.test({
  name:
    "with sysctl kernel.io_uring_disabled=2 the real io_uring_setup is refused with EPERM and auto falls back",
  ignore: ignoreWithoutUring || !TEST_SYSCTL,
  async fn() {
    if (!sysctlWritable) throw new Error(`TEST_SYSCTL=1 but ${SYSCTL} is not writable or not 0`);
    await using dir = await tempDir();
    if (!(await sh(`echo 2 > ${SYSCTL}`)).success) throw new Error(`cannot write ${SYSCTL}`);
    try {
      const r = await run(
        `import { CoreLog, PerCoreWalConfig } from MOD;
         const cfg = (b) => new PerCoreWalConfig(${
          JSON.stringify(dir.path)
        }, 1, { backend: b, segmentSizeBytes: 65536 });
         try { await CoreLog.open(cfg("io_uring"), 0); } catch (e) { console.log("io_uring:", e.code, e.errno); }
         const log = await CoreLog.open(cfg("auto"), 0); await log.close(); console.log("auto:", log.backend);`,
        ["-A"],
      );
      assertStringIncludes(r.text, "io_uring: Unsupported EPERM");
      assertStringIncludes(r.text, "auto: sync");
    } finally {
      await sh(`echo 0 > ${SYSCTL}`);
    }
    assertEquals((await sh(`cat ${SYSCTL}`)).out, "0");
  },
});

// A terminal makes Deno prompt for a permission not given on the command line; `script` (util-linux,
// in every Debian) gives the child one (its stdin at end of file: a prompt is answered by nothing and
// shows in the output). Without `script` the test fails: it never skips.
Deno.test({
  name:
    "a core Worker's start never prompts: --allow-ffi without --allow-env opens a manager on a terminal",
  async fn() {
    await using dir = await tempDir();
    const script = await Deno.makeTempFile({ suffix: ".ts" });
    try {
      await Deno.writeTextFile(
        script,
        `import { PerCoreWalManager } from ${JSON.stringify(`${root}mod.ts`)};
         const wal = await PerCoreWalManager.open(${
          JSON.stringify(`${dir.path}/wal`)
        }, { cores: 1, backend: "sync" });
         await wal.close();
         console.log("opened and closed");`,
      );
      const cmd = `${Deno.execPath()} run --allow-ffi --allow-read --allow-write ${script}`;
      const out = await new Deno.Command("timeout", {
        args: ["60", "script", "-qec", cmd, "/dev/null"],
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assertEquals(text.includes("Deno requests"), false, text);
      assertStringIncludes(text, "opened and closed");
    } finally {
      await Deno.remove(script);
    }
  },
});
