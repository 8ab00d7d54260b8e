/**
 * The demo's child process: opens the WAL, ingests events on every core and prints
 * `acked <n>` each time the first n events are durable. It runs until it is killed.
 *
 * Usage: deno run --allow-read --allow-write --allow-ffi --allow-env demo/_child.ts <dir> <cores> <backend>
 *
 * @module
 */
import { type BackendChoice, PerCoreWalConfig, PerCoreWalManager } from "../mod.ts";
import { eventKey, eventValue } from "./_events.ts";

const [dir, cores, backend] = Deno.args;
const manager = await PerCoreWalManager.open(
  new PerCoreWalConfig(dir, Number(cores), {
    backend: backend as BackendChoice,
    segmentSizeBytes: 16 * 1024 * 1024,
  }),
);
const enc = new TextEncoder();
const say = (s: string) => Deno.stdout.writeSync(enc.encode(s + "\n"));
say(`ready ${manager.backend}`);
const inFlight: Promise<void>[] = [];
for (let i = 0;; i++) {
  const key = eventKey("c", i);
  await manager.writer(i % manager.config.numCores).appendPutAsync(key, eventValue(key));
  if (i % 256 === 255) {
    const n = i + 1;
    inFlight.push(manager.syncAll().then(() => void say(`acked ${n}`)));
    if (inFlight.length >= 8) await inFlight.shift();
  }
}
