// PerCoreWalManager.open(dir, options): a path or a file: URL, the core count from the WAL
// itself, and unknown option keys refused by name.
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  configFromDirectory,
  mergeSegments,
  PerCoreWalConfig,
  PerCoreWalError,
  PerCoreWalManager,
  PerCoreWalReader,
  recoverPerCore,
} from "../mod.ts";
import { nearestKey } from "../src/option_keys.ts";
import { toPath } from "../src/path_arg.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

const SMALL = { segmentSizeBytes: 256 * 1024 };

async function entries(dir: string | URL): Promise<string[]> {
  const out: string[] = [];
  for await (const e of mergeSegments(dir)) out.push(`${e.coreId}:${e.sequence}`);
  return out.sort();
}

Deno.test({
  name: "open(dir) creates a WAL with navigator.hardwareConcurrency cores",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using m = await PerCoreWalManager.open(`${dir.path}/wal`, SMALL);
    assertEquals(m.numCores, navigator.hardwareConcurrency);
    assertEquals(m.config.baseDir, `${dir.path}/wal`);
    const meta = JSON.parse(await Deno.readTextFile(`${dir.path}/wal/wal.json`));
    assertEquals(meta.numCores, navigator.hardwareConcurrency);
  },
});

Deno.test({
  name: "open(dir) without cores reopens a WAL with the core count of its wal.json",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/wal`;
    {
      await using m = await PerCoreWalManager.open(path, { ...SMALL, cores: 3 });
      m.writer(2).appendPut("k", "v");
      await m.syncAll();
    }
    await using m = await PerCoreWalManager.open(path, SMALL);
    assertEquals(m.numCores, 3);
    assertEquals(m.writer(2).appendPut("k2", "v"), 2);
  },
});

Deno.test({
  name: "open(dir) without cores and without wal.json takes the core count from segment files",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/wal`;
    {
      await using m = await PerCoreWalManager.open(path, { ...SMALL, cores: 3 });
      m.writer(2).appendPut("k", "v");
      await m.syncAll();
    }
    await Deno.remove(`${path}/wal.json`);
    await using m = await PerCoreWalManager.open(path, SMALL);
    assertEquals(m.numCores, 3);
    assertEquals(m.writer(2).appendPut("k2", "v"), 2);
  },
});

Deno.test({
  name: "open(dir) keeps the segment pattern of an existing WAL when none is given",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/wal`;
    const segmentPattern = "seg.{core_id}.{segment}.bin";
    {
      await using m = await PerCoreWalManager.open(path, { ...SMALL, cores: 1, segmentPattern });
      m.writer(0).appendPut("k", "v");
    }
    await using m = await PerCoreWalManager.open(path, SMALL);
    assertEquals(m.config.options.segmentPattern, segmentPattern);
    assertEquals(m.writer(0).appendPut("k2", "v"), 2);
  },
});

Deno.test({
  name: "open(dir, { cores }) with fewer cores than the WAL has is refused (ConfigMismatch)",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const path = `${dir.path}/wal`;
    {
      await using m = await PerCoreWalManager.open(path, { ...SMALL, cores: 2 });
      m.writer(1).appendPut("k", "v");
    }
    const e = await assertRejects(
      () => PerCoreWalManager.open(path, { ...SMALL, cores: 1 }),
      PerCoreWalError,
    );
    assertEquals(e.code, "ConfigMismatch");
  },
});

Deno.test({
  name: "a file: URL is taken wherever a path is: open, config, recovery, merge, reader",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const url = new URL(`file://${dir.path}/wal%20dir`);
    {
      await using m = await PerCoreWalManager.open(url, { ...SMALL, cores: 2 });
      assertEquals(m.config.baseDir, `${dir.path}/wal dir`);
      m.writer(0).appendPut("a", "1");
      m.writer(1).appendPut("b", "2");
    }
    assertEquals(await entries(url), ["0:1", "1:1"]);
    assertEquals(configFromDirectory(url).numCores, 2);
    assertEquals(new PerCoreWalConfig(url, 2).baseDir, `${dir.path}/wal dir`);
    using r = await recoverPerCore(url);
    assertEquals(r.state.size, 2);
    await using reader = await PerCoreWalReader.open(
      new URL(`file://${dir.path}/wal%20dir/wal-0-000000.log`),
    );
    assertEquals((await reader.readNext()).kind, "entry");
  },
});

Deno.test("a URL that is not a local file: URL is refused with TypeError", async () => {
  assertThrows(() => toPath(new URL("https://example.com/wal")), TypeError, "file: URL");
  assertThrows(() => toPath(new URL("file://host/wal")), TypeError, "local");
  assertThrows(() => toPath(new URL("file:///a%2Fb")), TypeError, "%2F");
  assertThrows(() => new PerCoreWalConfig(new URL("http://x/y"), 1), TypeError, "file: URL");
  await assertRejects(
    () => PerCoreWalManager.open(new URL("https://example.com/wal")),
    TypeError,
    "file: URL",
  );
  await assertRejects(() => recoverPerCore(new URL("data:text/plain,x")), TypeError, "file: URL");
  assertEquals(toPath(new URL("file:///tmp/a%20b")), "/tmp/a b");
});

Deno.test("an unknown option key is refused with TypeError naming it and the nearest valid one", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/wal`;
  const e = await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => PerCoreWalManager.open(path, { segmentSize: 1024 } as any),
    TypeError,
  );
  assertStringIncludes(e.message, "unknown option segmentSize");
  assertStringIncludes(e.message, "did you mean segmentSizeBytes?");
  // Refused before anything is created.
  assertEquals(await Array.fromAsync(Deno.readDir(dir.path)), []);
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => new PerCoreWalConfig(path, 1, { maxBatchByte: 4096 } as any),
    TypeError,
    "did you mean maxBatchBytes?",
  );
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => PerCoreWalManager.open(new PerCoreWalConfig(path, 1), { idleWait: 5 } as any),
    TypeError,
    "did you mean idleWaitMs?",
  );
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => recoverPerCore(path, { mod: "strict" } as any),
    TypeError,
    "did you mean mode?",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => mergeSegments(path, { fromEpooch: 1 } as any),
    TypeError,
    "did you mean fromEpoch?",
  );
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => PerCoreWalReader.open(`${path}/x.log`, { maxRecord: 1 } as any),
    TypeError,
    "did you mean maxRecordBytes?",
  );
  assertEquals(await Array.fromAsync(Deno.readDir(dir.path)), []);
});

Deno.test("nearestKey suggests only a near name", () => {
  const keys = ["segmentSizeBytes", "backend", "cores"];
  assertEquals(nearestKey("segmentSize", keys), "segmentSizeBytes");
  assertEquals(nearestKey("Backend", keys), "backend");
  assertEquals(nearestKey("core", keys), "cores");
  assertEquals(nearestKey("zzzzzzzz", keys), undefined);
  assert(nearestKey("x", keys) === undefined);
});

Deno.test({
  name:
    'a "file://" string is read as a URL (no directory named "file:" is made); watch() after close() throws Closed',
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const url = new URL(`file://${dir.path}/wal`).href;
    const m = await PerCoreWalManager.open(url, { ...SMALL, cores: 1 });
    assertEquals(m.config.baseDir, `${dir.path}/wal`);
    m.writer(0).appendPut("k", "v");
    await m.close();
    const closed = assertThrows(() => m.watch(), PerCoreWalError);
    assertEquals(closed.code, "Closed");
    assertEquals(Deno.statSync(`${dir.path}/wal`).isDirectory, true);
    assertThrows(() => new PerCoreWalConfig("file://[bad", 1), TypeError, "not one");
  },
});
