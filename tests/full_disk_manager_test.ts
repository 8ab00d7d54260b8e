// What a full disk does to a core run by PerCoreWalManager (docs/GUARANTEES.md, "Limits"):
// a real tmpfs filled up, not an injected error.
import { assert, assertEquals } from "@std/assert";
import { PerCoreWalConfig, PerCoreWalError, PerCoreWalManager } from "../mod.ts";
import { appendUntilError, asPut, ignoreWithoutUring, readCore, smallFs } from "./_helpers.ts";

const KiB = 1024;
const value = (i: number) => new Uint8Array(2000).fill(i & 0xff);

/** Writes `path` in 4 KiB steps until the file system is full. */
async function fillUp(path: string): Promise<void> {
  using f = await Deno.open(path, { write: true, createNew: true });
  const chunk = new Uint8Array(4 * KiB);
  try {
    while (true) await f.write(chunk);
  } catch (e) {
    if (!String(e).includes("No space left")) throw e;
  }
}

Deno.test({
  name:
    "a full disk under the manager: appends reject with Io ENOSPC, manager.failures reports it, the other core keeps working, nothing acknowledged is lost, reopen after freeing space goes on",
  ignore: ignoreWithoutUring,
  async fn() {
    await using fs = await smallFs(2048 * KiB);
    if (!fs.mounted) {
      console.error(`tmpfs cannot be mounted here (${fs.why}): the full disk is not exercised`);
      return;
    }
    const config = new PerCoreWalConfig(`${fs.path}/wal`, 2, {
      segmentSizeBytes: 256 * KiB,
      segmentFill: "allocate",
      backend: "io_uring",
    });
    const manager = await PerCoreWalManager.open(config);
    const w0 = manager.writer(0);
    // Segments are laid out a window at a time, ahead of the writer: some records first, then
    // the rest of the file system is filled, so that a later layout on core 0 fails.
    const before = 20;
    for (let i = 1; i <= before; i++) w0.appendPut(`k-${i}`, value(i));
    await w0.sync();
    await fillUp(`${fs.path}/filler`);
    const more = await appendUntilError(w0, (i) => value(before + i), 2000);
    const error = more.error;
    if (!(error instanceof PerCoreWalError)) throw new Error(`no ENOSPC: ${error}`);
    assertEquals([error.code, error.errno], ["Io", "ENOSPC"], error.message);
    const acked = before + more.acked;
    // Wait for the Worker's failure report to reach the manager.
    for (let i = 0; i < 100 && manager.failures[0] === undefined; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const failure = manager.failures[0];
    assertEquals(failure?.errno, "ENOSPC");
    assertEquals(manager.failures[1], undefined);
    // The core is failed until the WAL is reopened: freeing space does not bring it back.
    await Deno.remove(`${fs.path}/filler`);
    let later: unknown;
    try {
      w0.appendPut("later", value(3));
      await w0.sync();
    } catch (e) {
      later = e;
    }
    if (!(later instanceof PerCoreWalError)) throw new Error(`a later append on core 0: ${later}`);
    assertEquals(later.errno, "ENOSPC", later.message);
    // Core 1 still takes appends (its segment has room).
    const w1 = manager.writer(1);
    w1.appendPut("core1", value(1));
    await w1.sync();
    await manager.close().catch(() => {});
    const again = await PerCoreWalManager.open(config);
    const w = again.writer(0);
    w.appendPut("after", value(7));
    await w.sync();
    await again.close();
    const entries = await readCore(config, 0);
    assert(entries.length >= acked + 1, `${entries.length} read back, ${acked} acknowledged`);
    for (let i = 0; i < acked; i++) assertEquals(asPut(entries[i].operation).value, value(i + 1));
  },
});
