// The files on disk decide who may write and with how many cores: the directory lock cannot be
// stolen by deleting wal.lock (issue 18, item 1), and the segments, not wal.json, say how many
// cores a WAL has (item 2).
import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { LOCK_FILE, lockWalDirectory, unlockWalDirectory } from "../src/lock.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { tempDir } from "./_helpers.ts";

const SYNC = { backend: "sync" as const, segmentSizeBytes: 1 << 20 };

Deno.test("a second writer is refused with Locked after wal.lock was deleted under the first", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, SYNC);
  await using first = await PerCoreWalManager.open(config);
  first.writer(0).appendPut("a", "1");
  await first.syncAll();
  Deno.removeSync(`${config.baseDir}/${LOCK_FILE}`);
  const e = await assertRejects(() => PerCoreWalManager.open(config), PerCoreWalError);
  assertEquals(e.code, "Locked");
  // A recovery that repairs takes the same lock.
  assertEquals(
    assertThrows(() => unlockWalDirectory(lockWalDirectory(config.baseDir)), PerCoreWalError)
      .code,
    "Locked",
  );
  // The first writer goes on.
  first.writer(0).appendPut("b", "2");
  await first.syncAll();
});

Deno.test("a second writer is refused with Locked after wal.lock was replaced by another file", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, SYNC);
  await using _first = await PerCoreWalManager.open(config);
  const lock = `${config.baseDir}/${LOCK_FILE}`;
  Deno.writeFileSync(`${lock}.new`, new Uint8Array());
  Deno.renameSync(`${lock}.new`, lock);
  const e = await assertRejects(() => PerCoreWalManager.open(config), PerCoreWalError);
  assertEquals(e.code, "Locked");
});

Deno.test("the lock is released by close(): the next writer opens", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, SYNC);
  const first = await PerCoreWalManager.open(config);
  Deno.removeSync(`${config.baseDir}/${LOCK_FILE}`);
  await first.close();
  const second = await PerCoreWalManager.open(config);
  await second.close();
});

Deno.test("without wal.json, opening with fewer cores than the segments show is refused (ConfigMismatch), and nothing is rewritten", async () => {
  await using dir = await tempDir();
  const wal = `${dir.path}/wal`;
  {
    await using m = await PerCoreWalManager.open(new PerCoreWalConfig(wal, 2, SYNC));
    m.writer(0).appendPut("a", "0");
    m.writer(1).appendPut("b", "1");
    await m.syncAll();
  }
  Deno.removeSync(`${wal}/wal.json`);
  const e = await assertRejects(
    () => PerCoreWalManager.open(new PerCoreWalConfig(wal, 1, SYNC)),
    PerCoreWalError,
  );
  assertEquals(e.code, "ConfigMismatch");
  assertEquals(
    [...Deno.readDirSync(wal)].some((f) => f.name === "wal.json"),
    false,
    "the refused open wrote no wal.json",
  );
  await (await PerCoreWalManager.open(new PerCoreWalConfig(wal, 2, SYNC))).close();
});
