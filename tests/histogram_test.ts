// LatencyHistogram's cumulative buckets (what /metrics exposes as a Prometheus histogram), and
// their path through a core's Worker to manager.metrics() on a real ring.
import { assert, assertEquals } from "@std/assert";
import { LATENCY_BUCKET_BOUNDS_US, LatencyHistogram } from "../src/histogram.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { ignoreWithoutUring, smallConfig, tempDir } from "./_helpers.ts";

Deno.test("LatencyHistogram.buckets() counts samples below each bound, cumulatively, and sums them", () => {
  const h = new LatencyHistogram();
  assertEquals(h.buckets().counts, LATENCY_BUCKET_BOUNDS_US.map(() => 0));
  // 10 µs and 63 µs are below 64; 64 µs itself is not (bounds are bucket edges); 100 µs is
  // below 128; 1 s below 2^20 µs; 10 s above every bound.
  for (const us of [10, 63, 64, 100, 1_000_000, 10_000_000]) h.record(us);
  const { counts, sumUs } = h.buckets();
  assertEquals(LATENCY_BUCKET_BOUNDS_US[0], 64);
  assertEquals(counts[0], 2);
  assertEquals(counts[1], 4);
  assertEquals(counts[LATENCY_BUCKET_BOUNDS_US.indexOf(2 ** 19)], 4);
  assertEquals(counts[LATENCY_BUCKET_BOUNDS_US.indexOf(2 ** 20)], 5);
  assertEquals(counts.at(-1), 5);
  assertEquals(sumUs, 10 + 63 + 64 + 100 + 1_000_000 + 10_000_000);
  for (let i = 1; i < counts.length; i++) assert(counts[i] >= counts[i - 1]);
});

Deno.test({
  name: "manager.metrics() carries each core's batch latency buckets, consistent with its count",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const m = await PerCoreWalManager.open(smallConfig(dir.path, {}, 2));
    for (let i = 0; i < 20; i++) {
      m.writer(i % 2).appendPut(`k${i}`, "v");
      await m.syncAll();
    }
    // The Worker publishes latencies at most every 20 ms, and always when it goes idle.
    await new Promise((r) => setTimeout(r, 100));
    for (const c of m.metrics()) {
      const b = c.syncLatencyBuckets;
      assertEquals(b.counts.length, LATENCY_BUCKET_BOUNDS_US.length);
      assert(c.syncLatency.count > 0, `core ${c.coreId} recorded no batch`);
      assert(b.counts.at(-1)! <= c.syncLatency.count);
      assert(b.counts.at(-1)! > 0, "fdatasyncs of tiny batches take less than 4 s");
      assert(b.sumUs > 0);
      assert(b.sumUs <= c.syncLatency.maxUs * c.syncLatency.count * 1.0001);
    }
    await m.close();
  },
});

Deno.test({
  name:
    "a core's latency figures catch up with its durable batches within a period, also when it sleeps",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const m = await PerCoreWalManager.open(smallConfig(dir.path, {}, 1));
    const w = m.writer(0);
    // Syncs in quick succession: most complete less than 20 ms after the previous publish,
    // and the Worker then goes to sleep (up to 200 ms) with nothing more to do.
    for (let i = 0; i < 10; i++) {
      w.appendPut(`k${i}`, "v");
      await w.sync();
    }
    await new Promise((r) => setTimeout(r, 60));
    const [c] = m.metrics();
    assertEquals(c.syncLatency.count, c.batches, "every durable batch is in the latency figures");
    assertEquals(c.syncLatencyBuckets.counts.at(-1), c.batches);
    await m.close();
  },
});
