// A producer thread for tests/worker_sleep_test.ts: rings a core's control block after a delay.
// Message in: { control: SharedArrayBuffer, delayMs }. Out: "ready" once loaded, "rang" after.
/// <reference lib="deno.worker" />
import { Control } from "../src/shared.ts";

self.onmessage = (e: MessageEvent) => {
  const { control, delayMs } = e.data as { control: SharedArrayBuffer; delayMs: number };
  setTimeout(() => {
    new Control(control).ring();
    self.postMessage("rang");
  }, delayMs);
};
self.postMessage("ready");
