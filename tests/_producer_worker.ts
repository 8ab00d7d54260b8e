// An application Worker that appends through an attached CoreWalWriter and reports what it
// got acknowledged. Message in: { handles, count, syncEvery, tag }. Out: { acked: [coreId, seq][] }.
/// <reference lib="deno.worker" />
import { CoreWalWriter, type WriterHandle } from "../src/writer.ts";

self.onmessage = async (e: MessageEvent) => {
  const { handles, count, syncEvery, tag } = e.data as {
    handles: WriterHandle[];
    count: number;
    syncEvery: number;
    tag: string;
  };
  try {
    const writers = handles.map((h) => CoreWalWriter.attach(h));
    const acked: [number, number, string][] = [];
    let pending: [number, number, string][] = [];
    for (let i = 0; i < count; i++) {
      const w = writers[i % writers.length];
      const key = `${tag}-${i}`;
      pending.push([w.coreId, w.appendPut(key, `value-${i}`), key]);
      if (pending.length >= syncEvery || i === count - 1) {
        await Promise.all(writers.map((x) => x.sync()));
        for (const [c, s, k] of pending) acked.push([c, s, k]);
        pending = [];
      }
    }
    self.postMessage({ acked });
  } catch (err) {
    self.postMessage({ error: String(err), code: (err as { code?: string }).code });
  }
};
