/**
 * The demo's application Worker: appends events to every core through attached writers,
 * 512 per sync with up to 8 syncs in flight, and reports how many were acknowledged.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { CoreWalWriter, type WriterHandle } from "../mod.ts";
import { eventKey, eventValue } from "./_events.ts";

self.onmessage = async (e: MessageEvent<{ handles: WriterHandle[]; events: number }>) => {
  try {
    const writers = e.data.handles.map((h) => CoreWalWriter.attach(h));
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < e.data.events; i++) {
      const key = eventKey("w", i);
      writers[i % writers.length].appendPut(key, eventValue(key)); // waits while the ring is full
      if (i % 512 === 511) {
        inFlight.push(Promise.all(writers.map((w) => w.sync())).then(() => {}));
        if (inFlight.length >= 8) await inFlight.shift();
      }
    }
    await Promise.all(inFlight);
    await Promise.all(writers.map((w) => w.sync()));
    writers.forEach((w) => w.close());
    self.postMessage({ acked: e.data.events });
  } catch (err) {
    self.postMessage({ error: String(err) });
  }
};
