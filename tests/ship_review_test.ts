// Hostile cases of the shipper's read-ahead (review of the prefill, the carry and the meter's
// hints): a resync that throws away what was read keeps each pending entry's end in step with it
// (the unshipped measure stays exact). With a real nats-server, stopped by its process id.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { decodeFrame } from "../src/ship/frame.ts";
import type { NatsShipper, ShipManager } from "../src/ship/shipper.ts";
import { shipToNats } from "../src/ship/ship_to_nats.ts";
import { ShipMarks } from "../src/ship_marks.ts";
import { UnshippedMeter } from "../src/ship/unshipped.ts";
import { watchWalBatches } from "../src/watch.ts";
import { ignoreWithoutUring, readCore, tempDir } from "./_helpers.ts";
import { copyDir, coreSequences, ignoreWithoutNats, NatsServer } from "./_nats.ts";

const ignore = ignoreWithoutNats || ignoreWithoutUring;

function config(dir: string) {
  return new PerCoreWalConfig(`${dir}/wal`, 1, { segmentSizeBytes: 64 * 1024 });
}

/** Waits (bounded) until `ok()`; the caller asserts what it waited for afterwards. */
async function until(ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 25));
}

/**
 * A shipper of core 0 of `m` to `url` (messages of 10 entries, quick retries) that has shipped 15
 * entries: 1-10 and 11-15.
 */
async function shipFifteen(m: PerCoreWalManager, url: string): Promise<NatsShipper> {
  const shipper = await shipToNats(m, {
    servers: url,
    node: "n1",
    maxRecordsPerMessage: 10,
    retryMaxMs: 50,
    publishTimeoutMs: 500,
  });
  const w = m.writer(0);
  for (let i = 0; i < 15; i++) w.appendPut(`a${i}`, "v".repeat(100));
  await w.sync();
  await shipper.drained();
  return shipper;
}

Deno.test({
  name: "shipToNats: after a resync that rereads entries it had read (the stream lost its last " +
    "message), the unshipped bytes still match the WAL's records after the mark",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const cfg = config(dir.path);
    await using m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    await using shipper = await shipFifteen(m, server.url);
    // The stream goes back to an older message of the core (as if it lost its last one: a
    // server without fsync; here a copy of the first message published again): the next
    // publish is refused, the shipper resyncs to what the stream ends with and reads again from
    // there, throwing away the entries it had read.
    const nc = await connect({ servers: server.url });
    let injected = 0;
    try {
      const jsm = await jetstreamManager(nc);
      const first = await jsm.streams.getMessage("WAL", { seq: 1 });
      const last = await jsm.streams.getMessage("WAL", { last_by_subj: "wal.n1.0" });
      if (first === null || last === null) throw new Error("no message of core 0 in the stream");
      assert(decodeFrame(last.data).firstSequence > decodeFrame(first.data).lastSequence);
      injected = (await jetstream(nc).publish("wal.n1.0", first.data)).seq;
    } finally {
      await nc.close();
    }
    for (let i = 0; i < 40; i++) {
      w.appendPut(`b${i}`, "v".repeat(100 + i));
      if (i % 10 === 9) await w.sync();
    }
    await shipper.drained();
    // After the copy, the stream goes on from the copy's end: every entry once, in order.
    const after = await coreSequences(server.url, 0, injected + 1);
    assertEquals(after, Array.from({ length: 55 - after[0] + 1 }, (_, i) => after[0] + i));
    assertEquals(after[after.length - 1], 55);
    // Now nothing is acknowledged: what the shipper measures is what the WAL holds after its mark.
    await server.kill();
    for (let i = 0; i < 30; i++) w.appendPut(`c${i}`, "v".repeat(200));
    await w.sync();
    const end = m.syncedPositions()[0];
    const shipped = shipper.status().cores[0].lastShippedSequence;
    assertEquals(shipped, 55);
    const expected = (await new UnshippedMeter(cfg, 0).measure(shipped, end)).bytes;
    assert(expected > 30 * 200, `the 30 records take ${expected} bytes`);
    await until(() => shipper.status().cores[0].unshippedBytes === expected);
    assertEquals(shipper.status().cores[0].unshippedBytes, expected);
  },
});

Deno.test({
  name: "shipToNats(another ShipManager, { maxUnshippedRecords }) is refused and leaves no " +
    "shipper registered in the WAL directory (its marks would hold every segment)",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using m = await PerCoreWalManager.open(config(dir.path));
    const source: ShipManager = {
      config: m.config,
      syncedPositions: () => m.syncedPositions(),
      watch: (options) => m.watch(options),
    };
    for (const limit of [{ maxUnshippedRecords: 10 }, { maxUnshippedBytes: 10_000 }]) {
      await assertRejects(
        () => shipToNats(source, { servers: "nats://127.0.0.1:1", node: "n1", ...limit }),
        TypeError,
        "PerCoreWalManager",
      );
      assertEquals(ShipMarks.list(m.config), [], "no marks registered for a refused shipper");
    }
  },
});

Deno.test({
  name: "watchWalBatches({ from }) inside an atomic batch, across rotations: the entries of " +
    "watchWal, each once, and each record's end the meter agrees with",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path);
    await using m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    for (let i = 0; i < 900; i++) {
      if (i % 40 === 0) {
        w.appendBatch([
          { type: "put", key: `b${i}`, value: "x".repeat(400) },
          { type: "put", key: `c${i}`, value: "y".repeat(300) },
          { type: "delete", key: `b${i - 40}` },
        ]);
      } else {
        w.appendPut(`k${i}`, "v".repeat(i % 250));
      }
      if (i % 50 === 49) await w.sync();
    }
    await w.sync();
    const end = m.syncedPositions()[0];
    assert(end.segment >= 2, `the WAL spans segments (it ends in segment ${end.segment})`);
    // A start inside the first atomic batch after the first segment.
    const all = await readCore(cfg, 0);
    const from = all.find((e) =>
      e.sequence > 300 && e.batchLast !== undefined && e.batchLast > e.sequence &&
      all[e.sequence - 2].batchLast !== e.batchLast
    )!.sequence + 1;
    const signal = AbortSignal.timeout(30_000);
    const got: number[] = [];
    const ends: { segment: number; offset: number; last: boolean; sequence: number }[] = [];
    const reader = watchWalBatches(cfg, { coreId: 0, from: { 0: from }, intervalMs: 5, signal })
      .getReader();
    while (got.length < end.sequence - from + 1) {
      const { value } = await reader.read();
      if (value === undefined) {
        break;
      }
      assertEquals(value.ends?.offset.length, value.entries.length);
      value.entries.forEach((e, i) => {
        got.push(e.sequence);
        ends.push({
          segment: value.ends!.segment[i],
          offset: value.ends!.offset[i],
          last: e.batchLast === undefined || e.batchLast === e.sequence,
          sequence: e.sequence,
        });
      });
    }
    await reader.cancel();
    assertEquals(
      got,
      all.filter((e) =>
        e.sequence >= from
      ).map((e) => e.sequence),
    );
    // Where each record ends, as the shipper hands it to the meter: the same bytes as a fresh
    // measure from the sequence alone.
    for (const x of ends.filter((x, i) => x.last && i % 7 === 0)) {
      const at = { segment: x.segment, offset: x.offset, next: x.sequence + 1 };
      const hinted = await new UnshippedMeter(cfg, 0).measure(x.sequence, end, at);
      const fresh = await new UnshippedMeter(cfg, 0).measure(x.sequence, end);
      assertEquals(hinted.bytes, fresh.bytes, `after sequence ${x.sequence}`);
    }
  },
});

// JetStream 2.9 acknowledges before its fsync: a power loss can take back every message of a
// core it acknowledged. Replayed with the store put back to a copy taken before them.
Deno.test({
  name: "shipToNats: a server that lost every message of a core it had acknowledged ships them " +
    "again from the WAL: no hole",
  ignore,
  async fn() {
    await using dir = await tempDir();
    const store = `${dir.path}/nats`;
    await using server = await NatsServer.start(store);
    const cfg = config(dir.path);
    await using m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    {
      // The stream, made by a first shipper with nothing to ship; then a copy of the store.
      await using first = await shipToNats(m, { servers: server.url, node: "n1" });
      await first.drained();
    }
    await server.kill();
    await copyDir(store, `${dir.path}/nats-before`);
    await server.restart();
    await using shipper = await shipFifteen(m, server.url);
    assertEquals(await coreSequences(server.url, 0), Array.from({ length: 15 }, (_, i) => i + 1));
    // The server comes back without them.
    await server.kill();
    await copyDir(`${dir.path}/nats-before`, store);
    await server.restart();
    for (let i = 0; i < 5; i++) w.appendPut(`b${i}`, "v".repeat(100));
    await w.sync();
    await shipper.drained();
    assertEquals(await coreSequences(server.url, 0), Array.from({ length: 20 }, (_, i) => i + 1));
    assertEquals(shipper.status().cores[0].lastShippedSequence, 20);
  },
});
