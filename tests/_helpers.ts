// Shared test helpers: temp directories, io_uring availability, reading a core's log back.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { PerCoreWalConfig, type PerCoreWalOptions } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import type { PerCoreWalEntry, PutOperation, WalOperation } from "../src/types.ts";
import { UringBackend } from "../src/io/uring.ts";

/** Whether tests that need io_uring must run (and fail) rather than be ignored. */
export const REQUIRE_URING = Deno.env.get("REQUIRE_URING") === "1";

function _probe(): string | undefined {
  try {
    const b = new UringBackend({ ringEntries: 8 });
    b.close();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Why io_uring is unavailable here, or undefined when it works. */
export const URING_UNAVAILABLE = _probe();
if (URING_UNAVAILABLE !== undefined) {
  console.error(
    `io_uring unavailable: ${URING_UNAVAILABLE}` +
      (REQUIRE_URING ? " (REQUIRE_URING=1: its tests will fail)" : " (its tests are ignored)"),
  );
}

/** Ignore a test that needs io_uring only when it is unavailable and not required. */
export const ignoreWithoutUring = URING_UNAVAILABLE !== undefined && !REQUIRE_URING;

/** The backends behaviour tests run on. */
export const BACKENDS = ["io_uring", "sync"] as const;

/** A fresh directory on the real disk, removed by the returned disposer. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "percore-wal-test-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** A config with small segments, for tests. */
export function smallConfig(
  dir: string,
  options: PerCoreWalOptions = {},
  numCores = 1,
): PerCoreWalConfig {
  return new PerCoreWalConfig(`${dir}/wal`, numCores, { segmentSizeBytes: 256 * 1024, ...options });
}

/** Every entry of core `coreId`, through the validating reader; throws on corruption. */
export async function readCore(config: PerCoreWalConfig, coreId = 0): Promise<PerCoreWalEntry[]> {
  const out: PerCoreWalEntry[] = [];
  const segs = listCoreSegments(config, coreId);
  for (let i = 0; i < segs.length; i++) {
    await using r = await PerCoreWalReader.open(segs[i].path, {
      maxRecordBytes: config.options.maxRecordBytes,
      isLastSegment: i === segs.length - 1,
    });
    for await (const e of r) out.push(e);
  }
  return out;
}

/** A deterministic PRNG (mulberry32) for seeded tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** UTF-8 bytes of a string. */
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
/** A string from UTF-8 bytes. */
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

/** The operation as a put, or a thrown error saying what it was instead. */
export function asPut(op: WalOperation): PutOperation {
  if (op.type !== "put") throw new Error(`expected a put, got ${op.type}`);
  return op;
}

/**
 * Options under which a core's 8 KiB shared buffer fills: the engine holds at most 1 MiB not yet
 * durable, so the Worker stops taking records in until an fdatasync completes.
 */
export const TINY_BUFFER_OPTIONS: PerCoreWalOptions = {
  maxRecordBytes: 2048,
  sharedBufferBytes: 8192,
  maxPendingBytes: 1024 * 1024,
  segmentSizeBytes: 4 * 1024 * 1024,
};

/** A tmpfs of `sizeBytes` mounted in a fresh directory, unmounted and removed on dispose. */
export async function smallFs(
  sizeBytes: number,
): Promise<{ path: string; mounted: boolean; why?: string } & AsyncDisposable> {
  const base = await Deno.makeTempDir({ prefix: "percore-wal-enospc-" });
  const path = `${base}/fs`;
  await Deno.mkdir(path);
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", path],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((e) => ({ success: false, stderr: new TextEncoder().encode(String(e)) }));
  const mounted = out.success;
  return {
    path,
    mounted,
    why: mounted ? undefined : new TextDecoder().decode(out.stderr).trim(),
    async [Symbol.asyncDispose]() {
      try {
        if (mounted) {
          const u = await new Deno.Command("umount", { args: [path], stderr: "piped" }).output();
          if (!u.success) throw new Error(`umount ${path}: ${new TextDecoder().decode(u.stderr)}`);
        }
      } finally {
        await Deno.remove(base, { recursive: true });
      }
    },
  };
}

/**
 * Segment files (`*.log`) under `dir` this process holds open (/proc needs a shell to read
 * without broad permissions). Only those: the runtime's own descriptors come and go meanwhile.
 */
export async function openSegmentFiles(dir: string): Promise<number> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `ls -l /proc/${Deno.pid}/fd | grep -F "${dir}/" | grep -c "\\.log$" || true`],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/**
 * Appends `value(i)` as `k-i` for i = 1, 2, ... up to `max`, syncing every 8, until an append or
 * a sync throws (a full disk): returns the last acknowledged i and what was thrown.
 */
export async function appendUntilError(
  log: { appendPut(key: string, value: Uint8Array): unknown; sync(): Promise<void> },
  value: (i: number) => Uint8Array,
  max: number,
): Promise<{ acked: number; error: unknown }> {
  let acked = 0;
  for (let i = 1; i <= max; i++) {
    try {
      log.appendPut(`k-${i}`, value(i));
      if (i % 8 === 0) {
        await log.sync();
        acked = i;
      }
    } catch (error) {
      return { acked, error };
    }
  }
  return { acked, error: undefined };
}

/**
 * Reads a merge stream until it rejects at damage: checks that it rejects with a damage code
 * ("ChecksumMismatch" or "Corrupted") and is done afterwards; returns how many entries came first.
 */
export async function readUntilDamage(stream: AsyncIterableIterator<unknown>): Promise<number> {
  let n = 0;
  const err = await assertRejects(async () => {
    for await (const _ of stream) n++;
  }, PerCoreWalError);
  assert(err.code === "ChecksumMismatch" || err.code === "Corrupted", err.code);
  assertEquals(await stream.next(), { value: undefined, done: true });
  return n;
}

/** Runs an application Worker that appends `count` records over `handles` and returns what it got acknowledged. */
export async function produce(
  handles: unknown[],
  count: number,
  tag: string,
  syncEvery = 64,
): Promise<[number, number, string][]> {
  const w = new Worker(new URL("./_producer_worker.ts", import.meta.url), { type: "module" });
  try {
    const result = await new Promise<{ acked?: [number, number, string][]; error?: string }>(
      (resolve, reject) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(e.message));
        };
        w.postMessage({ handles, count, syncEvery, tag });
      },
    );
    if (result.error !== undefined) throw new Error(result.error);
    return result.acked!;
  } finally {
    w.terminate();
  }
}

/** What a child `deno` process printed, and its exit code. */
export interface DenoRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `deno <args>` (NO_COLOR, no stdin). With `timeoutMs`, kills it after that long and throws:
 * a call that blocks (on a FIFO, on /dev/zero) fails the test instead of hanging it.
 */
export async function runDeno(args: string[], timeoutMs?: number): Promise<DenoRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    if (timeoutMs !== undefined) timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const done = await Promise.race([child.output(), timeout]);
  clearTimeout(timer);
  if (done === "timeout") {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`still running after ${timeoutMs} ms (hangs): deno ${args.join(" ")}`);
  }
  const dec = new TextDecoder();
  return { code: done.code, stdout: dec.decode(done.stdout), stderr: dec.decode(done.stderr) };
}

/** `wal verify <walDir>` through the CLI: its exit code and everything it printed. */
export async function walVerify(walDir: string): Promise<{ code: number; text: string }> {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const perms = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env"];
  const out = await runDeno(["run", ...perms, cli, "verify", walDir]);
  return { code: out.code, text: out.stdout + out.stderr };
}

/** Whether `strace` runs here (tests that trace system calls need it). */
export const HAVE_STRACE = (() => {
  try {
    return new Deno.Command("strace", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
