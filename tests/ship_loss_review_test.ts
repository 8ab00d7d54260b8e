// Hostile cases of the shipper's handling of a server that lost acknowledged messages (JetStream
// 2.9 acknowledges before its fsync), with a real nats-server whose store is put back to an older
// copy, stopped by its process id.
import { assert, assertEquals } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { scanSegment } from "../src/segment_probes.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { decodeFrame } from "../src/ship/frame.ts";
import type { NatsShipper } from "../src/ship/shipper.ts";
import { shipToNats } from "../src/ship/ship_to_nats.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";
import { copyDir, coreSequences, ignoreWithoutNats, NatsServer } from "./_nats.ts";

const ignore = ignoreWithoutNats || ignoreWithoutUring;

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

Deno.test({
  name: "shipToNats: a core whose lost messages' stream sequences another core's messages took " +
    "again ships them again, no hole",
  ignore,
  async fn() {
    await using dir = await tempDir();
    const store = `${dir.path}/nats`;
    await using server = await NatsServer.start(store);
    const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 2, { segmentSizeBytes: 64 * 1024 });
    await using m = await PerCoreWalManager.open(cfg);
    const opts = {
      servers: server.url,
      node: "n1",
      maxRecordsPerMessage: 10,
      retryMaxMs: 50,
      publishTimeoutMs: 500,
    };
    {
      await using first = await shipToNats(m, opts);
      await first.drained();
    }
    await server.kill();
    await copyDir(store, `${dir.path}/nats-before`);
    await server.restart();
    await using shipper = await shipToNats(m, opts);
    for (const c of [0, 1]) {
      const w = m.writer(c);
      for (let i = 0; i < 15; i++) w.appendPut(`a${i}`, "v".repeat(100));
      await w.sync();
    }
    await shipper.drained();
    assertEquals(await coreSequences(server.url, 0), range(1, 15));
    // The server comes back without any of them.
    await server.kill();
    await copyDir(`${dir.path}/nats-before`, store);
    await server.restart();
    // Core 1 ships first (core 0 is idle): the stream's sequences climb past core 0's last one.
    const w1 = m.writer(1);
    for (let i = 0; i < 30; i++) w1.appendPut(`b${i}`, "v".repeat(100));
    await w1.sync();
    await shipper.drained();
    assertEquals(await coreSequences(server.url, 1), range(1, 45));
    const w0 = m.writer(0);
    for (let i = 0; i < 5; i++) w0.appendPut(`c${i}`, "v".repeat(100));
    await w0.sync();
    await shipper.drained();
    assertEquals(await coreSequences(server.url, 0), range(1, 20));
  },
});

// The loss after a checkpoint retired the oldest entries, seen by the shipper that shipped them
// and by one started after it: that one has no acknowledgement of its own to compare with, but
// the marks say what was shipped: the stream's empty subject is read from sequence 1, so the
// retired range is declared, never skipped.
for (const restarted of [false, true]) {
  Deno.test({
    name:
      `shipToNats${restarted ? " started after" : ": the shipper of"} a server that lost every ` +
      "message of a core after a checkpoint retired their entries: the retired range is declared " +
      "as a gap, the rest shipped again",
    ignore,
    async fn() {
      await using dir = await tempDir();
      const store = `${dir.path}/nats`;
      await using server = await NatsServer.start(store);
      const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 1, { segmentSizeBytes: 64 * 1024 });
      await using m = await PerCoreWalManager.open(cfg);
      const opts = { servers: server.url, node: "n1", retryMaxMs: 50, publishTimeoutMs: 500 };
      {
        await using first = await shipToNats(m, opts);
        await first.drained();
      }
      await server.kill();
      await copyDir(store, `${dir.path}/nats-before`);
      await server.restart();
      let shipper: NatsShipper | undefined = await shipToNats(m, opts);
      try {
        const w = m.writer(0);
        for (let i = 0; i < 2000; i++) w.appendPut(`a${i}`, "v".repeat(100));
        await w.sync();
        await shipper.drained();
        if (restarted) {
          await shipper.close();
          shipper = undefined;
        }
        await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
        const oldest = listCoreSegments(cfg, 0)[0];
        const held = (await scanSegment(oldest.path, { maxRecordBytes: 1 << 20 })).header!;
        assert(held.firstSequence > 1, "the checkpoint retired the oldest entries");
        await server.kill();
        await copyDir(`${dir.path}/nats-before`, store);
        await server.restart();
        shipper ??= await shipToNats(m, opts);
        for (let i = 0; i < 5; i++) w.appendPut(`b${i}`, "v".repeat(100));
        await w.sync();
        await shipper.drained();
        const s = shipper.status().cores[0];
        // The checkpoint took a sequence of its own.
        const end = w.durableSequence;
        assertEquals([s.state, s.error, s.lastShippedSequence], ["idle", undefined, end]);
        assertEquals(await coreSequences(server.url, 0), range(1, end));
        assertEquals((await coreGaps(server.url, 0))[0], [1, held.firstSequence - 1]);
      } finally {
        await shipper?.close();
      }
    },
  });
}

/** Core `coreId`'s gap markers in stream "WAL": their ranges. */
async function coreGaps(url: string, coreId: number): Promise<[number, number][]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("WAL");
    const out: [number, number][] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage("WAL", { seq });
      if (m === null) continue;
      const f = decodeFrame(m.data);
      if (f.coreId === coreId && f.gap === true) out.push([f.firstSequence, f.lastSequence]);
    }
    return out;
  } finally {
    await nc.close();
  }
}
