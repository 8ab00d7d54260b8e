// Bad input, one test per row: what a user gets (class, code, message) for each mistake, and
// that nothing written before is lost. docs/ERRORS.md's "Errors you get for bad input" lists the
// same rows.
import { assert, assertEquals, assertInstanceOf, assertStringIncludes } from "@std/assert";
import { crc32cUpdate } from "../src/crc32c.ts";
import { PerCoreWalConfig, type PerCoreWalOptions } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { ignoreWithoutUring, readCore, tempDir } from "./_helpers.ts";

const SMALL: PerCoreWalOptions = { segmentSizeBytes: 64 * 1024, maxRecordBytes: 4096 };

type ErrorClass = typeof PerCoreWalError | typeof TypeError | typeof RangeError;

interface Row {
  /** The bad input, as docs/ERRORS.md's table names it. */
  input: string;
  /** Does the bad thing in `dir` (a fresh temp dir); its error is checked. */
  run: (dir: string) => unknown;
  error: ErrorClass;
  code?: string;
  message: string | ((dir: string) => string);
  /** Needs io_uring (a real manager). Default true. */
  uring?: boolean;
}

/** Opens a manager on `dir/wal` with 1 (or `cores`) cores, appends a record, syncs. */
async function opened(dir: string, cores = 1, options: PerCoreWalOptions = SMALL) {
  const m = await PerCoreWalManager.open(new PerCoreWalConfig(`${dir}/wal`, cores, options));
  for (let c = 0; c < cores; c++) m.writer(c).appendPut(`k${c}`, "v");
  await m.syncAll();
  return m;
}

/** Creates a closed WAL with 2 cores, 2 segments each (enough records to rotate). */
async function twoSegments(dir: string): Promise<PerCoreWalConfig> {
  const m = await opened(dir, 2);
  for (let i = 0; i < 200; i++) {
    m.writer(i % 2).appendPut(`key-${i}`, new Uint8Array(1000));
    if (i % 20 === 19) await m.syncAll();
  }
  await m.syncAll();
  await m.close();
  const config = new PerCoreWalConfig(`${dir}/wal`, 2, SMALL);
  assert(Deno.statSync(`${dir}/wal/wal-0-000001.log`).isFile, "core 0 rotated");
  return config;
}

const ROWS: Row[] = [
  {
    input: "numCores 0",
    run: (d) => new PerCoreWalConfig(d, 0),
    error: RangeError,
    message: "numCores must be between 1 and 1024, got 0",
    uring: false,
  },
  {
    input: "numCores negative",
    run: (d) => new PerCoreWalConfig(d, -2),
    error: RangeError,
    message: "numCores must be between 1 and 1024, got -2",
    uring: false,
  },
  {
    input: "numCores fractional",
    run: (d) => new PerCoreWalConfig(d, 1.5),
    error: RangeError,
    message: "numCores must be an integer, got 1.5",
    uring: false,
  },
  {
    input: "numCores above 1024",
    run: (d) => new PerCoreWalConfig(d, 1025),
    error: RangeError,
    message: "numCores must be between 1 and 1024, got 1025",
    uring: false,
  },
  {
    input: "baseDir is a file",
    run: (d) => {
      Deno.writeTextFileSync(`${d}/wal`, "not a directory");
      return PerCoreWalManager.open(new PerCoreWalConfig(`${d}/wal`, 1, SMALL));
    },
    error: PerCoreWalError,
    code: "Io",
    message: (d) => `WAL directory "${d}/wal" is not a directory`,
  },
  {
    input: "baseDir unreadable (mode 000, as a user other than root)",
    run: unreadable,
    error: PerCoreWalError,
    code: "Io",
    message: (d) => `Cannot lock WAL directory "${d}/locked": open failed on`,
  },
  {
    input: 'O_DIRECT refused by the file system, writeMode "direct"',
    // No file system here refuses O_DIRECT (tmpfs accepts it on this kernel, see IO_NOTES):
    // the fault-injecting backend refuses it as such a file system would.
    run: (d) =>
      PerCoreWalManager.open(
        new PerCoreWalConfig(`${d}/wal`, 1, { ...SMALL, writeMode: "direct" }),
        { faults: { 0: { refuseDirect: true, errno: 22 } } },
      ),
    error: PerCoreWalError,
    code: "Unsupported",
    message: (d) =>
      `writeMode "direct" needs O_DIRECT, which the file system of "${d}/wal" refuses`,
  },
  {
    input: "segmentPattern with /",
    run: (d) => new PerCoreWalConfig(d, 1, { segmentPattern: "x/wal-{core_id}-{segment}.log" }),
    error: RangeError,
    message: "must be a plain file name (no path separator",
    uring: false,
  },
  {
    input: "segmentPattern with ..",
    run: (d) => new PerCoreWalConfig(d, 1, { segmentPattern: "..wal-{core_id}-{segment}.log" }),
    error: RangeError,
    message: 'must be a plain file name (no path separator, no "..")',
    uring: false,
  },
  {
    input: "core id out of range",
    run: async (d) => {
      await using m = await opened(d, 2);
      m.writer(2);
    },
    error: PerCoreWalError,
    code: "InvalidCoreId",
    message: "Core id 2 is out of range: this WAL has cores 0 to 1",
  },
  {
    input: "core id negative",
    run: async (d) => {
      await using m = await opened(d, 2);
      m.writerHandle(-1);
    },
    error: PerCoreWalError,
    code: "InvalidCoreId",
    message: "Core id -1 is out of range",
  },
  {
    input: "key not bytes or string",
    run: async (d) => {
      await using m = await opened(d);
      m.writer(0).appendPut(42 as unknown as string, "v");
    },
    error: TypeError,
    message: "key must be a Uint8Array or a string, got number",
  },
  {
    input: "value not bytes or string",
    run: async (d) => {
      await using m = await opened(d);
      m.writer(0).appendPut("k", { a: 1 } as unknown as string);
    },
    error: TypeError,
    message: "value must be a Uint8Array or a string, got Object",
  },
  {
    input: "a sequence given as a bigint",
    run: async (d) => {
      await using m = await opened(d);
      await m.writer(0).waitDurable(1n as unknown as number);
    },
    error: TypeError,
    message: "sequence must be a number, got the bigint 1n: pass a number (Number(x))",
  },
  {
    input: "a checkpoint id that is not a safe integer",
    run: async (d) => {
      await using m = await opened(d);
      m.writer(0).appendCheckpoint(2 ** 53);
    },
    error: RangeError,
    message: "checkpoint id must be a non-negative safe integer, got 9007199254740992",
  },
  {
    input: "record above maxRecordBytes",
    run: async (d) => {
      await using m = await opened(d);
      m.writer(0).appendPut("k", new Uint8Array(5000));
    },
    error: PerCoreWalError,
    code: "RecordTooLarge",
    message: "is larger than maxRecordBytes (4096)",
  },
  {
    input: "append after close()",
    run: async (d) => {
      const m = await opened(d);
      const w = m.writer(0);
      await m.close();
      w.appendPut("k", "v");
    },
    error: PerCoreWalError,
    code: "Closed",
    message: "Cannot append to core 0: the WAL is closed",
  },
  {
    input: "sync after close()",
    run: async (d) => {
      const m = await opened(d);
      const w = m.writer(0);
      await m.close();
      await w.sync();
    },
    error: PerCoreWalError,
    code: "Closed",
    message: "core 0",
  },
  {
    input: "manager.syncAll() after close()",
    run: async (d) => {
      const m = await opened(d);
      await m.close();
      await m.syncAll();
    },
    error: PerCoreWalError,
    code: "Closed",
    message: "The WAL manager is closed",
  },
  {
    input: "two managers on the same directory",
    run: async (d) => {
      await using _m = await opened(d);
      await PerCoreWalManager.open(new PerCoreWalConfig(`${d}/wal`, 1, SMALL));
    },
    error: PerCoreWalError,
    code: "Locked",
    message: (d) => `WAL directory "${d}/wal" is in use by another writer (lock file`,
  },
  {
    input: "a segment of another core placed in the directory",
    run: async (d) => {
      const config = await twoSegments(d);
      // Core 1's first segment, as core 0's next one.
      Deno.copyFileSync(`${d}/wal/wal-1-000000.log`, nextSegmentOfCore0(d));
      await PerCoreWalManager.open(config);
    },
    error: PerCoreWalError,
    code: "Corrupted",
    message: () => `Cannot open segment "${placed}": its header says core 1 segment 0`,
  },
  {
    input: "a segment of another core, read by recovery",
    run: async (d) => {
      await twoSegments(d);
      Deno.copyFileSync(`${d}/wal/wal-1-000000.log`, nextSegmentOfCore0(d));
      await recoverPerCore(`${d}/wal`);
    },
    error: PerCoreWalError,
    code: "Corrupted",
    message: () => `Segment "${placed}": its header says core 1 segment 0`,
  },
  {
    input: "a segment of another format version placed in the directory",
    run: async (d) => {
      const config = await twoSegments(d);
      const path = `${d}/wal/wal-0-000001.log`;
      const bytes = Deno.readFileSync(path);
      const v = new DataView(bytes.buffer);
      v.setUint16(8, 4, true); // version 4, with a correct header CRC
      v.setUint32(60, ~crc32cUpdate(0xffffffff, bytes, 0, 60) >>> 0, true);
      Deno.writeFileSync(path, bytes);
      await PerCoreWalManager.open(config);
    },
    error: PerCoreWalError,
    code: "Unsupported",
    message: (d) =>
      `Cannot open segment "${d}/wal/wal-0-000001.log": format version 4 (this module reads 1 to 3)`,
  },
];

/**
 * The path after core 0's last started segment (a segment prepared ahead and never started,
 * only zeros, is removed: it is where the next one goes).
 */
function nextSegmentOfCore0(d: string): string {
  const config = new PerCoreWalConfig(`${d}/wal`, 2, SMALL);
  let last = -1;
  for (const e of Deno.readDirSync(`${d}/wal`)) {
    const p = config.parseSegmentName(e.name);
    if (p?.coreId !== 0) continue;
    const head = Deno.readFileSync(`${d}/wal/${e.name}`).subarray(0, 64);
    if (head.every((b) => b === 0)) Deno.removeSync(`${d}/wal/${e.name}`);
    else last = Math.max(last, p.segment);
  }
  placed = config.segmentPath(0, last + 1);
  return placed;
}

/** The last path {@linkcode nextSegmentOfCore0} returned (tests run one at a time). */
let placed = "";

/** Opens a manager on a directory of mode 000 as an unprivileged user (root ignores modes). */
async function unreadable(d: string): Promise<unknown> {
  const dir = `${d}/locked`;
  Deno.mkdirSync(dir, { mode: 0o700 });
  Deno.chmodSync(dir, 0o000);
  // `id -u`, not Deno.uid(): the test task does not grant --allow-sys.
  const uid = new TextDecoder().decode(
    (await new Deno.Command("id", { args: ["-u"] }).output()).stdout,
  );
  if (uid.trim() !== "0") {
    return PerCoreWalManager.open(new PerCoreWalConfig(dir, 1, SMALL));
  }
  // As root: run the same open as nobody (setpriv), in a subprocess, and rethrow its error.
  Deno.chmodSync(d, 0o755);
  // The subprocess imports a copy of the module in `d`, not the checkout: a checkout may lie under
  // a directory that nobody cannot enter (a `mktemp -d` folder is 0700).
  for (const part of ["src", "ffi"]) {
    copyTreeReadable(new URL(`../${part}/`, import.meta.url).pathname, `${d}/module/${part}`);
  }
  Deno.chmodSync(`${d}/module`, 0o755);
  const script = `${d}/open.ts`;
  Deno.writeTextFileSync(
    script,
    `import { PerCoreWalConfig } from "./module/src/config.ts";
import { PerCoreWalManager } from "./module/src/manager.ts";
try {
  await PerCoreWalManager.open(new PerCoreWalConfig(Deno.args[0], 1, { segmentSizeBytes: 65536 }));
  console.log(JSON.stringify({ opened: true }));
} catch (e) {
  console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message }));
}`,
  );
  Deno.mkdirSync(`${d}/deno_dir`, { mode: 0o777 });
  Deno.chmodSync(`${d}/deno_dir`, 0o777);
  const out = await new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      Deno.execPath(),
      "run",
      "-A",
      script,
      dir,
    ],
    env: { DENO_DIR: `${d}/deno_dir`, HOME: d, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const got = JSON.parse(text || "{}");
  Deno.chmodSync(dir, 0o700);
  if (got.name === "PerCoreWalError") throw new PerCoreWalError(got.code, got.message);
  throw new Error(`unexpected: ${text} ${new TextDecoder().decode(out.stderr)}`);
}

/** Copies a directory of source files, readable and searchable by every user. */
function copyTreeReadable(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true, mode: 0o755 });
  Deno.chmodSync(to, 0o755);
  for (const e of Deno.readDirSync(from)) {
    if (e.isDirectory) copyTreeReadable(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile) {
      Deno.copyFileSync(`${from}/${e.name}`, `${to}/${e.name}`);
      Deno.chmodSync(`${to}/${e.name}`, 0o644);
    }
  }
}

for (const row of ROWS) {
  Deno.test({
    name: `bad input: ${row.input} → ${row.error.name}${row.code ? ` "${row.code}"` : ""}`,
    ignore: row.uring === false ? false : ignoreWithoutUring,
    async fn() {
      await using dir = await tempDir();
      let thrown: unknown;
      try {
        await row.run(dir.path);
      } catch (e) {
        thrown = e;
      }
      assert(thrown !== undefined, `${row.input}: nothing was thrown`);
      assertInstanceOf(thrown, row.error);
      const expected = typeof row.message === "string" ? row.message : row.message(dir.path);
      assertStringIncludes((thrown as Error).message, expected);
      if (row.code !== undefined) assertEquals((thrown as PerCoreWalError).code, row.code);
      else assert(!(thrown instanceof PerCoreWalError), "a wrong argument is not a WAL error");
    },
  });
}

Deno.test({
  name: "bad input loses nothing: after each refused call the records are still there",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const config = new PerCoreWalConfig(`${dir.path}/wal`, 2, SMALL);
    {
      await using m = await opened(dir.path, 2);
      const w = m.writer(0);
      const bad: (() => unknown)[] = [
        () => w.appendPut(42 as unknown as string, "v"),
        () => w.appendPut("k", new Uint8Array(5000)),
        () => m.writer(7),
      ];
      for (const f of bad) {
        let threw = false;
        try {
          f();
        } catch {
          threw = true;
        }
        assert(threw);
      }
      w.appendPut("after", "ok");
      await m.syncAll();
      let locked = false;
      try {
        await PerCoreWalManager.open(config);
      } catch (e) {
        locked = e instanceof PerCoreWalError && e.code === "Locked";
      }
      assert(locked, "the second manager was refused");
      w.appendPut("after-lock", "ok");
      await m.syncAll();
    }
    const keys = (await readCore(config, 0)).map((e) =>
      e.operation.type === "put" ? new TextDecoder().decode(e.operation.key) : e.operation.type
    );
    assertEquals(keys, ["k0", "after", "after-lock"]);
    assertEquals((await readCore(config, 1)).length, 1);
  },
});
