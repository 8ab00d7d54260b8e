// A producer Worker of the power-loss simulator with Workers (tests/_power_loss_workers.ts): it
// appends records `${name}-${n}` (values from `powerLossValue`) through an attached writer and
// awaits `sync()` now and then, publishing in shared memory how many it may have appended (before
// each append) and how many a resolved `sync()` acknowledged. It stops when told (shared memory),
// or when the core fails (the simulated power loss), and then posts "done".
/// <reference lib="deno.worker" />
import { CoreWalWriter, type WriterHandle } from "../src/writer.ts";
import { powerLossValue, Progress } from "./_power_loss_values.ts";

self.onmessage = async (e: MessageEvent) => {
  const { handle, name, progress, from, seed } = e.data as {
    handle: WriterHandle;
    name: string;
    progress: SharedArrayBuffer;
    from: number;
    seed: number;
  };
  const p = new Int32Array(progress);
  let error: string | undefined;
  try {
    const w = CoreWalWriter.attach(handle);
    let r = seed >>> 0;
    const rand = () => (r = (Math.imul(r, 1103515245) + 12345) >>> 0) / 4294967296;
    let n = from;
    while (Atomics.load(p, Progress.STOP) === 0) {
      const count = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < count; i++, n++) {
        Atomics.store(p, Progress.APPENDED, n + 1);
        w.appendPut(`${name}-${n}`, powerLossValue(name, n));
      }
      if (rand() < 0.5) {
        const upTo = n;
        await w.sync();
        Atomics.store(p, Progress.ACKED, upTo);
      } else {
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
  } catch (err) {
    // The core failed or closed: the power is gone.
    error = String(err);
  }
  self.postMessage({ done: true, error });
};
