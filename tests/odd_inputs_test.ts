// Odd inputs are read once, before a sequence is claimed, and refused when they cannot be read as
// plain bytes; what a checkpoint could not carry is refused at the append (issue 18, items 5, 6
// and the inconsistencies about keys and core ids).
import { assert, assertEquals, assertThrows } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { tempDir } from "./_helpers.ts";

const OPTIONS = { backend: "sync" as const, segmentSizeBytes: 1 << 20 };
const text = new TextEncoder();
const bytes = (s: string) => text.encode(s);

/** A Uint8Array subclass whose `length` changes between reads (odd reads 4, even reads 2). */
class Shifty extends Uint8Array {
  #reads = 0;
  override get length(): number {
    return this.#reads++ % 2 === 0 ? 4 : 2;
  }
}

Deno.test("a Proxy around a Uint8Array is refused before a sequence is claimed; the core goes on", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  await using m = await PerCoreWalManager.open(config);
  const w = m.writer(0);
  const proxy = new Proxy(bytes("value"), {});
  assert(proxy instanceof Uint8Array, "the premise: a Proxy passes instanceof");
  assertThrows(() => w.appendPut("k", proxy), TypeError, "Proxy");
  assertThrows(() => w.appendPut(proxy, "v"), TypeError, "Proxy");
  assertEquals(w.appendPut("k", "v"), 1, "no sequence was taken by the refused appends");
  await w.sync();
  assertEquals(m.failures, [undefined]);
});

Deno.test("a Uint8Array subclass with a changing length is written as the bytes it views", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  const value = new Shifty(bytes("abcd").buffer);
  {
    await using m = await PerCoreWalManager.open(config);
    m.writer(0).appendPut("k", value);
    m.writer(0).appendPut("k2", "after");
    await m.syncAll();
  }
  {
    // The engine on this thread takes the same bytes.
    const log = await CoreLog.open(config, 0);
    log.appendPut("k3", new Shifty(bytes("wxyz").buffer));
    await log.sync();
    await log.close();
  }
  using r = await recoverPerCore(config.baseDir, { mode: "strict" });
  assertEquals(r.state.get("k"), bytes("abcd"));
  assertEquals(r.state.get("k2"), bytes("after"));
  assertEquals(r.state.get("k3"), bytes("wxyz"));
});

Deno.test("a key or value over a detached ArrayBuffer is refused, not written as empty", async () => {
  await using dir = await tempDir();
  const log = await CoreLog.open(new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS), 0);
  try {
    const buffer = new ArrayBuffer(8);
    const view = new Uint8Array(buffer);
    structuredClone(buffer, { transfer: [buffer] });
    assertThrows(() => log.appendPut("k", view), TypeError, "detached");
    assertThrows(() => log.appendPut(view, "v"), TypeError, "detached");
    assertThrows(() => log.appendDelete(view), TypeError, "detached");
    assertEquals(log.appendPut("k", new Uint8Array(0)), 1, "an empty value is still fine");
  } finally {
    await log.close();
  }
});

Deno.test("strings with a lone surrogate are refused: \\uD800 and \\uDBFF are not one key", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  await using m = await PerCoreWalManager.open(config);
  assertThrows(() => m.writer(0).appendPut("\uD800", "a"), TypeError, "well-formed");
  assertThrows(() => m.writer(0).appendPut("k", "\uDBFF"), TypeError, "well-formed");
  assertThrows(() => m.writer(0).appendDelete("x\uDC00"), TypeError, "well-formed");
  assertEquals(m.writer(0).appendPut("\u{1F600}", "a"), 1, "a surrogate pair is fine");
});

Deno.test("writer() with a core id that is not a number says that the type is wrong", async () => {
  await using dir = await tempDir();
  await using m = await PerCoreWalManager.open(new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS));
  assertThrows(() => m.writer("0" as unknown as number), TypeError, "must be a number");
  assertThrows(() => m.writer(0n as unknown as number), TypeError, "must be a number");
});

Deno.test("a barrier epoch no checkpoint could follow is refused at the append; checkpoints go on", async () => {
  await using dir = await tempDir();
  const config = new PerCoreWalConfig(`${dir.path}/wal`, 1, OPTIONS);
  {
    await using m = await PerCoreWalManager.open(config);
    const w = m.writer(0);
    const before = m.epoch;
    assertThrows(() => w.appendEpochBarrier(2 ** 53 - 1), RangeError, "checkpoint");
    assertEquals(m.epoch, before, "a refused barrier does not move the epoch");
    w.appendEpochBarrier(2 ** 53 - 2);
    w.appendPut("k", "v");
    await m.syncAll();
    const meta = await new CheckpointCoordinator(m).checkpoint();
    assertEquals(meta.epoch, 2 ** 53 - 2);
  }
  await using m = await PerCoreWalManager.open(config);
  assertEquals(m.epoch, 2 ** 53 - 1);
});
