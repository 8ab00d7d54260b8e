// How long a durable entry takes to come out of `manager.watch()`: one producer appends a record,
// awaits its sync(), and the time from the sync's resolution to the entry's arrival in the stream
// is its lag. Small segments make the stream cross rotations.
//
// Usage: deno run -A bench/watch_lag.ts [records] [segmentSizeBytes]
import { PerCoreWalManager } from "../mod.ts";

const records = Number(Deno.args[0] ?? 3000);
const segmentSizeBytes = Number(Deno.args[1] ?? 64 * 1024);
const dir = await Deno.makeTempDir({ prefix: "watch-lag-" });
try {
  await using m = await PerCoreWalManager.open(dir, { cores: 1, segmentSizeBytes });
  const w = m.writer(0);
  const syncedAt = new Map<number, number>();
  const lags: number[] = [];
  const reading = (async () => {
    for await (const e of m.watch({ coreId: 0 })) {
      const t = syncedAt.get(e.sequence);
      if (t !== undefined) lags.push(performance.now() - t);
      if (e.sequence >= records) break;
    }
  })();
  for (let i = 0; i < records; i++) {
    const seq = w.appendPut(`k${i}`, "v".repeat(100));
    await w.sync();
    syncedAt.set(seq, performance.now());
  }
  await reading;
  lags.sort((a, b) => a - b);
  const at = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))].toFixed(2);
  console.log(
    `${lags.length} entries (${records} appended, segments of ${segmentSizeBytes} bytes): ` +
      `lag p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`,
  );
} finally {
  Deno.removeSync(dir, { recursive: true });
}
