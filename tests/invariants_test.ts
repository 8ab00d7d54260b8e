// Invariants as code: a broken one is a PerCoreWalError "Internal" naming it, and the engine
// fails the core that met it instead of continuing.
import { assertEquals, assertMatch, assertThrows } from "@std/assert";
import { assert as invariant, invariantError } from "../src/assert.ts";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { SyncBackend } from "../src/io/sync.ts";
import { smallConfig, tempDir } from "./_helpers.ts";

Deno.test("assert() throws an Internal PerCoreWalError naming the invariant, only when it fails", () => {
  invariant(1 + 1 === 2, "arithmetic holds");
  const e = assertThrows(() => invariant(false, "the sky is up", { coreId: 3 }), PerCoreWalError);
  assertEquals([e.code, e.coreId], ["Internal", 3]);
  assertMatch(e.message, /core 3.*the sky is up/);
  assertEquals(invariantError("x").code, "Internal");
});

/** A backend whose batch buffers are shorter than asked: a batch would run past its buffer. */
class ShortBuffers extends SyncBackend {
  override allocBuffer(size: number): Uint8Array {
    return size === 64 * 1024 ? new Uint8Array(256) : super.allocBuffer(size);
  }
}

Deno.test("a broken engine invariant fails the core with code Internal; later appends are refused", async () => {
  await using dir = await tempDir();
  const cfg = smallConfig(dir.path, { backend: "sync", maxBatchBytes: 64 * 1024 });
  const backend = new ShortBuffers();
  const failures: PerCoreWalError[] = [];
  const log = await CoreLog.open(cfg, 0, { backend, onFail: (e) => failures.push(e) });
  const e = assertThrows(() => log.appendPut("k", new Uint8Array(1000)), PerCoreWalError);
  assertEquals(e.code, "Internal");
  assertMatch(e.message, /a batch never grows past its buffer/);
  assertEquals(log.failure, e, "the core is failed");
  assertEquals(failures, [e], "onFail heard of it");
  assertThrows(() => log.appendPut("k", "v"), PerCoreWalError, "past its buffer");
  await log.close().catch(() => {});
  await backend.close();
});
