// Child of the crash test: appends to every core (main thread producer), and prints each
// acknowledged sequence as "ack <core> <seq>" once sync() resolved. Runs until killed.
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";

const [dir, cycle] = Deno.args;
const m = await PerCoreWalManager.open(
  new PerCoreWalConfig(dir, 2, { segmentSizeBytes: 256 * 1024 }),
);
const enc = new TextEncoder();
const out = (s: string): void => void Deno.stdout.writeSync(enc.encode(s + "\n"));
out("ready");
let i = 0;
while (true) {
  const pending: Promise<void>[] = [];
  for (let b = 0; b < 4; b++) {
    for (let k = 0; k < 50; k++, i++) {
      const c = i % 2;
      const seq = m.writer(c).appendPut(`c${cycle}-k${i}`, `v${i}`);
      if (k === 49) pending.push(m.writer(c).waitDurable(seq).then(() => out(`ack ${c} ${seq}`)));
    }
    pending.push(
      m.syncAll().then(() => m.syncedPositions().forEach((p, c) => out(`ack ${c} ${p.sequence}`))),
    );
  }
  await Promise.all(pending);
}
