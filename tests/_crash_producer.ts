// Application Worker of the crash loop's child: appends through attached writers and posts
// "a <core> <seq> <key>" lines once sync() resolved. Message in: { handles, cycle, producer }.
/// <reference lib="deno.worker" />
import { CoreWalWriter, type WriterHandle } from "../src/writer.ts";
import { crashKey, crashValue } from "./crash_loop.ts";

self.onmessage = async (e: MessageEvent) => {
  const { handles, cycle, producer } = e.data as {
    handles: WriterHandle[];
    cycle: number;
    producer: number;
  };
  const writers = handles.map((h) => CoreWalWriter.attach(h));
  for (let i = 0;;) {
    const batch: string[] = [];
    for (let k = 0; k < 3; k++, i++) {
      const w = writers[(i + 1) % writers.length];
      const key = crashKey(cycle, producer, i);
      batch.push(`a ${w.coreId} ${await w.appendPutAsync(key, crashValue(key))} ${key}`);
    }
    await Promise.all(writers.map((w) => w.sync()));
    self.postMessage(batch.join("\n"));
    await new Promise((res) => setTimeout(res, 10));
  }
};
