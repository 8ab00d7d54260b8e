// Child of the crash loop (`tests/crash_loop.ts`): a manager on 2 cores with small segments, two
// producers (this thread and an application Worker, `tests/_crash_producer.ts`), and a checkpoint
// every ~100 ms. Prints "ready", then "a <core> <seq> <key>" for each record once sync() resolved
// (durable), "rotating" when a core starts a new segment and "checkpoint-step <step>" after each
// checkpoint step. Runs until killed.
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { CRASH_CORES, CRASH_OPTIONS, crashKey, crashValue } from "./crash_loop.ts";

const [dir, cycleArg] = Deno.args;
const cycle = Number(cycleArg);
const config = new PerCoreWalConfig(dir, CRASH_CORES, CRASH_OPTIONS);
const m = await PerCoreWalManager.open(config);
const enc = new TextEncoder();
const out = (s: string): void => {
  const bytes = enc.encode(s + "\n");
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
};
const delay = (ms: number) => new Promise((res) => setTimeout(res, ms));

// Segment rotations: a core's highest segment index grows.
const highest = new Array<number>(CRASH_CORES).fill(-1);
const watchSegments = (): boolean => {
  let grew = false;
  for (const e of Deno.readDirSync(dir)) {
    const p = config.parseSegmentName(e.name);
    if (p !== undefined && p.segment > highest[p.coreId]) {
      if (highest[p.coreId] >= 0) grew = true;
      highest[p.coreId] = p.segment;
    }
  }
  return grew;
};
watchSegments();
setInterval(() => watchSegments() && out("rotating"), 3);

out("ready");

const worker = new Worker(new URL("./_crash_producer.ts", import.meta.url), { type: "module" });
worker.onmessage = (e: MessageEvent<string>) => out(e.data);
worker.postMessage({
  handles: Array.from({ length: CRASH_CORES }, (_, c) => m.writerHandle(c)),
  cycle,
  producer: 1,
});

const coordinator = new CheckpointCoordinator(m, { retain: 1 });
(async () => {
  while (true) {
    await delay(100);
    await coordinator.checkpoint({ onStep: (step) => out(`checkpoint-step ${step}`) });
  }
})();

const writers = Array.from({ length: CRASH_CORES }, (_, c) => m.writer(c));
for (let i = 0;;) {
  const batch: string[] = [];
  for (let k = 0; k < 3; k++, i++) {
    const w = writers[i % CRASH_CORES];
    const key = crashKey(cycle, 0, i);
    batch.push(`a ${w.coreId} ${await w.appendPutAsync(key, crashValue(key))} ${key}`);
  }
  await Promise.all(writers.map((w) => w.sync()));
  out(batch.join("\n"));
  await delay(10);
}
