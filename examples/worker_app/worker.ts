/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The Worker's side of examples/worker_app/main.ts: attaches the writer handle the main thread
 * sent, appends, waits until its records are durable, detaches (`close()`), and ends.
 *
 * @module
 */

import { CoreWalWriter, type WriterHandle } from "../../mod.ts";

/** What main.ts sends. */
export interface ToWorker {
  handle: WriterHandle;
  count: number;
}

/** What the Worker answers. */
export type FromWorker = { lastSequence: number } | { error: string };

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const { handle, count } = e.data;
  try {
    // `using` detaches the writer (close()) when the block ends, even on an error.
    using writer = CoreWalWriter.attach(handle);
    let last = 0;
    for (let i = 0; i < count; i++) {
      // A Worker may block for space; appendPutAsync waits without blocking instead.
      last = await writer.appendPutAsync(`worker-${i}`, `value ${i}`);
    }
    await writer.waitDurable(last, { signal: AbortSignal.timeout(30_000) });
    self.postMessage({ lastSequence: last } satisfies FromWorker);
  } catch (err) {
    self.postMessage({ error: String(err) } satisfies FromWorker);
  }
  self.close();
};
