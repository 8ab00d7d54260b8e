/**
 * The demo's application Worker: appends events to every core through attached writers,
 * 512 per sync, and reports how many were acknowledged.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { CoreWalWriter, type WriterHandle } from "./mod.ts";

self.onmessage = async (e: MessageEvent<{ handles: WriterHandle[]; events: number }>) => {
  try {
    const writers = e.data.handles.map((h) => CoreWalWriter.attach(h));
    const value = new Uint8Array(112);
    const key = new Uint8Array(16);
    key[15] = 1; // not the main thread's keys
    const view = new DataView(key.buffer);
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < e.data.events; i++) {
      view.setUint32(0, i, true);
      writers[i % writers.length].appendPut(key, value); // waits for space if the buffer is full
      if (i % 512 === 511) {
        inFlight.push(Promise.all(writers.map((w) => w.sync())).then(() => {}));
        if (inFlight.length >= 8) await inFlight.shift();
      }
    }
    await Promise.all(inFlight);
    await Promise.all(writers.map((w) => w.sync()));
    self.postMessage({ acked: e.data.events });
  } catch (err) {
    self.postMessage({ error: String(err) });
  }
};
