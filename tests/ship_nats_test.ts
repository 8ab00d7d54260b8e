// shipToNats with a real nats-server: exactly once and in order per core, across kills of the
// server and of the shipper, outages past the duplicate window, and two shippers of one node.
import { assert, assertEquals } from "@std/assert";
import { PerCoreWalManager } from "../src/manager.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { shipToNats } from "../src/ship/shipper.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";
import { checkStream, ignoreWithoutNats, NatsServer } from "./_nats.ts";

const ignore = ignoreWithoutNats || ignoreWithoutUring;

function config(dir: string, cores: number) {
  return new PerCoreWalConfig(`${dir}/wal`, cores, { segmentSizeBytes: 64 * 1024 });
}

/** Appends `n` records per core, some as atomic batches, syncing now and then. */
async function appendSome(m: PerCoreWalManager, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i += 10) {
    for (let c = 0; c < m.config.numCores; c++) {
      const w = m.writer(c);
      if (i % 30 === 0) {
        w.appendBatch([
          { type: "put", key: `${tag}-${c}-${i}`, value: "b".repeat(50) },
          { type: "delete", key: `${tag}-${c}-${i - 10}` },
          { type: "put", key: `${tag}-${c}-${i}-x`, value: "c" },
        ]);
        for (let j = 3; j < 10; j++) w.appendPut(`${tag}-${c}-${i + j}`, "v".repeat(100));
      } else {
        for (let j = 0; j < 10; j++) w.appendPut(`${tag}-${c}-${i + j}`, "v".repeat(100));
      }
    }
    await m.syncAll();
  }
}

Deno.test({
  name: "shipToNats(manager): a 2-core WAL shipped while appending, each sequence once, in order",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    await using m = await PerCoreWalManager.open(config(dir.path, 2));
    await using shipper = await shipToNats(m, {
      servers: server.url,
      node: "n1",
      maxRecordsPerMessage: 16,
    });
    await appendSome(m, 300, "a");
    await shipper.drained();
    const durable = m.syncedPositions().map((p) => p.sequence);
    const last = await checkStream(server.url, "WAL");
    assertEquals(last.get("wal.n1.0"), durable[0]);
    assertEquals(last.get("wal.n1.1"), durable[1]);
    const st = shipper.status();
    assertEquals(st.connection, "connected");
    assertEquals(st.cores.map((c) => c.lastShippedSequence), durable);
    assertEquals(st.cores.map((c) => c.unshippedRecords), [0, 0]);
    assert(st.cores.every((c) => c.lastAckAt !== undefined));
  },
});
