// examples/worker_app: a main thread and an application Worker appending through a handle; and
// the handle's own buffer size (writerHandle(coreId, { bufferBytes })).
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { CoreWalWriter } from "../src/writer.ts";
import { ignoreWithoutUring, readCore, runDeno, str, tempDir } from "./_helpers.ts";

Deno.test({
  name: "examples/worker_app runs: the Worker's records and the main thread's are recovered",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const wal = `${dir.path}/wal`;
    const main = new URL("../examples/worker_app/main.ts", import.meta.url).pathname;
    const out = await runDeno(
      ["run", "--allow-read", "--allow-write", "--allow-ffi", "--allow-env", main, wal, "300"],
      120_000,
    );
    assertEquals(out.code, 0, out.stderr);
    assert(out.stdout.includes("recovered: 301 keys"), out.stdout);
    using r = await recoverPerCore(wal);
    assertEquals(r.state.size, 301);
    assertEquals(str(r.state.get("worker-299")!), "value 299");
    assertEquals(str(r.state.get("from-main")!), "hello");
    const core1 = await readCore(new PerCoreWalConfig(wal, 2), 1);
    assertEquals(
      core1.map((e) => e.sequence),
      Array.from({ length: 300 }, (_, i) => Number(i + 1)),
    );
  },
});

Deno.test({
  name:
    "writerHandle(coreId, { bufferBytes }) sizes the handle's buffer and lowers its largest record to what two of fit",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1);
    const m = await PerCoreWalManager.open(cfg);
    assertEquals(m.writerHandle(0).ring.byteLength - 64, cfg.options.sharedBufferBytes);
    for (const bad of [4095, 5000, 2 ** 31, 1.5]) {
      assertThrows(() => m.writerHandle(0, { bufferBytes: bad }), RangeError, "bufferBytes");
    }
    assertThrows(
      () => m.writerHandle(0, { bufferBytes: "4096" as unknown as number }),
      TypeError,
    );
    const handle = m.writerHandle(0, { bufferBytes: 8192 });
    assertEquals(handle.ring.byteLength - 64, 8192);
    assertEquals(handle.maxRecordBytes, 4096 - 8);
    using w = CoreWalWriter.attach(handle);
    const e = assertThrows(() => w.appendPut("k", new Uint8Array(5000)), PerCoreWalError);
    assertEquals(e.code, "RecordTooLarge");
    // Many records through the small buffer: it wraps, and every one arrives.
    let last = 0;
    for (let i = 0; i < 2000; i++) last = await w.appendPutAsync(`k${i}`, new Uint8Array(1000));
    await w.waitDurable(last);
    await m.close();
    await assertRejects(() => w.sync(), PerCoreWalError);
    assertEquals((await readCore(cfg)).length, 2000);
  },
});
