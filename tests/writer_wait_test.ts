// The ...Async appends' timeoutMs: a full shared buffer fails fast with Backpressure and claims
// nothing, so that a server can answer 503 instead of waiting.
import { assert, assertEquals, assertGreater, assertRejects, assertThrows } from "@std/assert";
import { batchRecordBytes } from "../src/batch_record.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { ignoreWithoutUring, readCore, tempDir, TINY_BUFFER_OPTIONS } from "./_helpers.ts";

Deno.test({
  name:
    "appendPutAsync({ timeoutMs: 0 }) on a full shared buffer throws Backpressure at once and appends nothing",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1, TINY_BUFFER_OPTIONS);
    const m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    const value = new Uint8Array(1900);
    let accepted = 0;
    let fastFailures = 0;
    // Fill the buffer, then, in the same turn (the Worker has had no time to free space), ask
    // for an append that must not wait. Repeated a few times so that one lucky drain between
    // the two calls cannot decide the outcome.
    for (let round = 0; round < 20 && fastFailures === 0; round++) {
      try {
        for (let i = 0; i < 100_000; i++) {
          w.appendPut(`k${accepted}`, value);
          accepted++;
        }
      } catch (e) {
        assert(e instanceof PerCoreWalError && e.code === "Backpressure", String(e));
      }
      const before = w.sequence;
      const started = performance.now();
      try {
        await w.appendPutAsync("fast", value, { timeoutMs: 0 });
        accepted++;
      } catch (e) {
        assert(e instanceof PerCoreWalError && e.code === "Backpressure", String(e));
        assertEquals(w.sequence, before, "a refused append claims no sequence");
        // Not a timing threshold: a 0 ms wait must not sit in the 100 ms wait loop.
        assert(performance.now() - started < 5_000);
        fastFailures++;
      }
    }
    assertGreater(fastFailures, 0, "the full buffer was never observed by timeoutMs: 0");
    await assertRejects(
      () => w.appendPutAsync("k", "v", { timeoutMs: -1 }),
      RangeError,
      "timeoutMs",
    );
    // The default still waits for space and succeeds.
    for (let i = 0; i < 50; i++) {
      await w.appendPutAsync(`a${i}`, value, { timeoutMs: 30_000 });
      accepted++;
    }
    await w.sync();
    assertEquals(w.durableSequence, accepted);
    await m.close();
    const entries = await readCore(cfg);
    assertEquals(entries.length, accepted);
    assert(entries.every((e) => e.operation.type === "put"));
  },
});

Deno.test({
  name:
    "hasRoom / waitForRoom: false on a full shared buffer, true once the Worker drained it; a wait that runs out throws Backpressure; nothing is appended",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1, TINY_BUFFER_OPTIONS);
    await using m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    const value = new Uint8Array(1900);
    const bytes = batchRecordBytes([{ type: "put", key: "k", value }]);
    assert(w.hasRoom(bytes), "an empty buffer has room");
    let full = false;
    for (let round = 0; round < 20 && !full; round++) {
      try {
        for (let i = 0; i < 100_000; i++) w.appendPut(`k${round}.${i}`, value);
      } catch (e) {
        assert(e instanceof PerCoreWalError && e.code === "Backpressure", String(e));
      }
      // Same turn: the Worker had no time to free space.
      if (!w.hasRoom(bytes)) full = true;
    }
    assert(full, "the full buffer was never observed by hasRoom");
    const before = w.sequence;
    await assertRejects(() => w.waitForRoom(1 << 30, { timeoutMs: 0 }), PerCoreWalError);
    await w.waitForRoom(bytes, { timeoutMs: 30_000 });
    assert(w.hasRoom(bytes), "room once waitForRoom resolved");
    assertEquals(w.sequence, before, "waiting for room appends nothing");
    const aborted = AbortSignal.abort(new Error("stop"));
    await assertRejects(() => w.waitForRoom(bytes, { signal: aborted }), Error, "stop");
    await assertRejects(() => w.waitForRoom(-1), RangeError);
    assertThrows(() => w.hasRoom(1.5), RangeError);
    await w.sync();
  },
});
