/**
 * Appending from an application Worker: the main thread opens the WAL and hands a Worker a
 * writer handle; the Worker appends through `CoreWalWriter.attach(handle)`, waits until its
 * records are durable, detaches and ends; the main thread closes the WAL and recovers it.
 *
 * Run it (worker.ts is the Worker's side):
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-ffi --allow-env examples/worker_app/main.ts ./data/worker_app
 * ```
 *
 * What a handle costs. Each `manager.writerHandle(coreId)` is one `SharedArrayBuffer` of the
 * configuration's `sharedBufferBytes`: 64 MiB with the defaults (the smallest power of two that
 * holds two records of the default `maxRecordBytes`, 16 MiB, at least 8 MiB). That memory is
 * reserved (address space), not committed: a page costs RAM (RSS) only once the producer writes
 * to it. With the defaults, eight handles raised the RSS by 0.3 MiB while 512 MiB were reserved
 * (`deno run --allow-read --allow-write --allow-ffi --allow-env bench/handle_memory.ts 8`). A producer the core's Worker keeps up with cycles through the first 1 MiB of
 * its buffer (the ring goes back to its start when empty), so a steady producer commits about
 * 1 MiB; a burst that fills the buffer commits all of it, and those pages stay committed until
 * the handle is closed and its buffer collected. So the cost per attached thread is 1 MiB in
 * steady state and up to `bufferBytes` after bursts; the reservation counts against `ulimit -v`
 * and a strict overcommit policy.
 *
 * Making it smaller: `manager.writerHandle(coreId, { bufferBytes })` sizes one handle's buffer
 * (a power of two from 4096 bytes). Records larger than `bufferBytes / 2 - 8` are then refused
 * through that handle ("RecordTooLarge"), and a burst larger than the buffer waits for the core's
 * Worker ("Backpressure" on the main thread, a wait in a Worker, or the `...Async` appends) a bit
 * sooner. This example uses 1 MiB. What should be measured before lowering the default
 * (`sharedBufferBytes`): appends per second and tail latency with many producers in bursts
 * (bench W6-style), and how often appends meet Backpressure, with 1, 8 and 64 MiB buffers.
 *
 * @module
 */

import { PerCoreWalConfig, PerCoreWalManager, recoverPerCore } from "../../mod.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

const dir = Deno.args[0] ?? "./data/worker_app";
const count = Number(Deno.args[1] ?? 1000);

await using manager = await PerCoreWalManager.open(new PerCoreWalConfig(dir, 2));
// The main thread appends to core 0 through its own writer...
manager.writer(0).appendPut("from-main", "hello");
// ...and a Worker appends to core 1 through a handle: one handle per thread.
const handle = manager.writerHandle(1, { bufferBytes: 1 << 20 });
const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
const done = new Promise<FromWorker>((resolve, reject) => {
  worker.onmessage = (e: MessageEvent<FromWorker>) => resolve(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    reject(new Error(`worker failed: ${e.message}`));
  };
});
worker.postMessage({ handle, count } satisfies ToWorker);
const result = await done;
worker.terminate(); // it has closed itself already; terminate() is harmless then
if ("error" in result) throw new Error(`worker failed: ${result.error}`);
console.log(`worker: ${count} records durable on core 1, last sequence ${result.lastSequence}`);
await manager.syncAll();
await manager.close();

// Recovery sees every record of both threads.
using recovered = await recoverPerCore(dir);
console.log(`recovered: ${recovered.state.size} keys, ${recovered.entriesReplayed} entries`);
