// shipToNats and the way back with a real nats-server: exactly once and in order per core,
// across kills of the server and of the shipper, outages past the duplicate window, two
// shippers of one node, and a corrupted message refused by the reader. Each test checks the
// whole stream: every (node, core, sequence) once, each core without gap, in order, and
// recoverFromNats equal to recoverPerCore of the WAL.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { ShipMarks } from "../src/ship_marks.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { encodeFrame } from "../src/ship/frame.ts";
import { readNatsStream, recoverFromNats } from "../src/ship/read.ts";
import { type ShipManager, startShipper } from "../src/ship/shipper.ts";
import { shipToNats } from "../src/ship/ship_to_nats.ts";
import { ignoreWithoutUring, readCore, runDeno, tempDir } from "./_helpers.ts";
import { checkStream, ignoreWithoutNats, NatsServer } from "./_nats.ts";

const ignore = ignoreWithoutNats || ignoreWithoutUring;

function config(dir: string, cores: number) {
  return new PerCoreWalConfig(`${dir}/wal`, cores, { segmentSizeBytes: 64 * 1024 });
}

/** Appends about `n` records per core, some in atomic batches, syncing every 10. */
async function appendSome(m: PerCoreWalManager, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i += 10) {
    for (let c = 0; c < m.config.numCores; c++) {
      const w = m.writer(c);
      if (i % 30 === 0) {
        w.appendBatch([
          { type: "put", key: `${tag}-${c}-${i}`, value: "b".repeat(50) },
          { type: "delete", key: `${tag}-${c}-${i - 10}` },
          { type: "commit", offsets: { [`src${c}`]: i }, watermark: i },
        ]);
        for (let j = 3; j < 10; j++) w.appendPut(`${tag}-${c}-${i + j}`, "v".repeat(100));
      } else {
        for (let j = 0; j < 10; j++) w.appendPut(`${tag}-${c}-${(i + j) % 97}`, `${tag}${i}`);
      }
    }
    await m.syncAll();
  }
}

/**
 * The whole check, after the WAL is closed: the stream holds each core's sequences 1..last
 * once, in order; readNatsStream gives the WAL's entries back; recoverFromNats equals
 * recoverPerCore.
 */
async function checkAll(url: string, walDir: string, node: string, cores: number) {
  const cfg = new PerCoreWalConfig(walDir, cores, { segmentSizeBytes: 64 * 1024 });
  const last = await checkStream(url, "WAL");
  const wal = await Promise.all(Array.from({ length: cores }, (_, c) => readCore(cfg, c)));
  for (let c = 0; c < cores; c++) {
    assertEquals(last.get(`wal.${node}.${c}`), wal[c].length, `core ${c}: all shipped`);
  }
  const read: Record<number, unknown[]> = {};
  for await (const e of readNatsStream({ servers: url, node })) {
    const { node: n, streamSequence: _, ...entry } = e;
    assertEquals(n, node);
    (read[e.coreId] ??= []).push(entry);
  }
  for (let c = 0; c < cores; c++) assertEquals(read[c], wal[c], `core ${c}: entries read back`);
  const fromNats = await recoverFromNats({ servers: url, node });
  using fromWal = await recoverPerCore(walDir);
  assertEquals([...fromNats.state], [...fromWal.state]);
  assertEquals(fromNats.offsets, fromWal.offsets);
  assertEquals(fromNats.watermark, fromWal.watermark);
  assertEquals(fromNats.entriesReplayed, wal.reduce((n, w) => n + w.length, 0));
}

// A manager's entries come to the shipper in arrays (its registered batched watch); any other
// ShipManager's through its public watch(), one by one: both ship the same.
for (const kind of ["manager", "another ShipManager"] as const) {
  Deno.test({
    name: `shipToNats(${kind}): a 2-core WAL shipped while appending, each sequence once, in order`,
    ignore,
    async fn() {
      await using dir = await tempDir();
      await using server = await NatsServer.start(`${dir.path}/nats`);
      {
        await using m = await PerCoreWalManager.open(config(dir.path, 2));
        const source: ShipManager = kind === "manager" ? m : {
          config: m.config,
          syncedPositions: () => m.syncedPositions(),
          watch: (options) => m.watch(options),
        };
        await using shipper = await shipToNats(source, {
          servers: server.url,
          node: "n1",
          maxRecordsPerMessage: 16,
        });
        await appendSome(m, 300, "a");
        await shipper.drained();
        const durable = m.syncedPositions().map((p) => p.sequence);
        const st = shipper.status();
        assertEquals(st.connection, "connected");
        assertEquals(st.cores.map((c) => c.lastShippedSequence), durable);
        assertEquals(st.cores.map((c) => c.unshippedRecords), [0, 0]);
        assert(st.cores.every((c) => c.lastAckAt !== undefined));
      }
      await checkAll(server.url, `${dir.path}/wal`, "n1", 2);
    },
  });
}

Deno.test({
  name: "shipToNats: the server killed (-9) mid-run and restarted on its store: nothing lost, " +
    "nothing twice",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    {
      await using m = await PerCoreWalManager.open(config(dir.path, 2));
      await using shipper = await shipToNats(m, {
        servers: server.url,
        node: "n1",
        maxRecordsPerMessage: 8,
        retryMaxMs: 200,
        publishTimeoutMs: 500,
      });
      const appending = appendSome(m, 600, "a");
      while (shipper.status().cores[0].lastShippedSequence < 50) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await server.kill();
      await appending;
      await appendSome(m, 100, "b");
      // The shipper sees the outage and keeps reporting its lag.
      while (shipper.status().cores.every((c) => c.retries === 0)) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert(shipper.status().cores.some((c) => c.unshippedRecords > 0));
      await server.restart();
      await shipper.drained();
      assertEquals(shipper.status().connection, "connected");
    }
    await checkAll(server.url, `${dir.path}/wal`, "n1", 2);
  },
});

Deno.test({
  name: "shipToNats: the server down longer than the duplicate window: resumes from the " +
    "stream's last message",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    {
      await using m = await PerCoreWalManager.open(config(dir.path, 2));
      await using shipper = await shipToNats(m, {
        servers: server.url,
        node: "n1",
        maxRecordsPerMessage: 8,
        retryMaxMs: 100,
        publishTimeoutMs: 300,
        streamConfig: { duplicate_window: 100_000_000 }, // 100 ms, the least allowed
      });
      const appending = appendSome(m, 400, "a");
      while (shipper.status().cores[1].lastShippedSequence < 30) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await server.kill();
      await appending;
      // Well past the 100 ms window: a retry can no longer be recognised by its Nats-Msg-Id.
      await new Promise((r) => setTimeout(r, 500));
      await server.restart();
      await appendSome(m, 50, "b");
      await shipper.drained();
    }
    await checkAll(server.url, `${dir.path}/wal`, "n1", 2);
  },
});

Deno.test({
  name: "shipToNats: two shippers of one node at once never interleave; the chain stays whole",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    {
      await using m = await PerCoreWalManager.open(config(dir.path, 2));
      const options = { servers: server.url, node: "n1", retryMaxMs: 50 };
      await using a = await shipToNats(m, { ...options, maxRecordsPerMessage: 5 });
      // On one WAL the second registration is refused; a shipper that holds nothing (as one on
      // another copy of the node would) meets the stream's expected-sequence chain instead.
      const refused = await assertRejects(() => shipToNats(m, options), PerCoreWalError);
      assertEquals(refused.code, "Locked");
      await using b = await shipToNats(m, { ...options, retain: false, maxRecordsPerMessage: 7 });
      await appendSome(m, 400, "a");
      await Promise.all([a.drained(), b.drained()]);
    }
    await checkAll(server.url, `${dir.path}/wal`, "n1", 2);
  },
});

Deno.test({
  name: "shipToNats(dir): the shipping process killed (-9) and started again ships the rest " +
    "exactly once",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const child = new URL("./_ship_child.ts", import.meta.url).pathname;
    const walDir = `${dir.path}/wal`;
    {
      await using m = await PerCoreWalManager.open(config(dir.path, 2));
      await appendSome(m, 300, "a");
      const p = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", child, walDir, server.url, "n1", "forever"],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const nc = await connect({ servers: server.url });
      try {
        const jsm = await jetstreamManager(nc);
        while (true) {
          const n = await jsm.streams.info("WAL").then((i) => i.state.messages, () => 0);
          if (n >= 10) break;
          await new Promise((r) => setTimeout(r, 10));
        }
      } finally {
        await nc.close();
      }
      Deno.kill(p.pid, "SIGKILL");
      await p.status;
      await appendSome(m, 200, "b");
      const once = await runDeno(["run", "-A", child, walDir, server.url, "n1", "once"], 120_000);
      assertEquals(once.code, 0, once.stderr);
      assertEquals(JSON.parse(once.stdout), m.syncedPositions().map((p) => p.sequence));
    }
    await checkAll(server.url, walDir, "n1", 2);
  },
});

Deno.test({
  name: "readNatsStream refuses a corrupted message, a gap and a late start, naming the stream " +
    "sequence and subject",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    {
      await using m = await PerCoreWalManager.open(config(dir.path, 1));
      await using shipper = await shipToNats(m, { servers: server.url, node: "n1" });
      await appendSome(m, 30, "a");
      await shipper.drained();
    }
    const servers = server.url;
    const nc = await connect({ servers });
    try {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info("WAL");
      await jsm.streams.update("WAL", { ...info.config, subjects: ["wal.n1.>", "wal.n2.>"] });
      const put = (sequence: number) =>
        encodeFrame([{
          coreId: 0,
          epoch: 1,
          sequence,
          timestampNs: 1n,
          operation: { type: "delete", key: new Uint8Array([1]) },
        }]);
      // A late start on a subject of its own: refused unless accepted.
      await js.publish("wal.n2.0", put(5));
      const late = await assertRejects(
        () => Array.fromAsync(readNatsStream({ servers, node: "n2" })),
        PerCoreWalError,
        'subject "wal.n2.0": core 0 of node "n2" starts at sequence 5',
      );
      assertEquals(late.coreId, 0);
      assertEquals(
        (await Array.fromAsync(readNatsStream({ servers, node: "n2", allowMissingStart: true })))
          .length,
        1,
      );
      // A gap after it.
      const gap = await js.publish("wal.n2.0", put(7));
      await assertRejects(
        () => Array.fromAsync(readNatsStream({ servers, node: "n2", allowMissingStart: true })),
        PerCoreWalError,
        `message ${gap.seq} on subject "wal.n2.0": a gap`,
      );
      // A corrupted message at the end of node n1's core 0.
      const bad = encodeFrame([{
        coreId: 0,
        epoch: 1,
        sequence: 31,
        timestampNs: 1n,
        operation: { type: "delete", key: new Uint8Array([2]) },
      }]);
      bad[40] ^= 1;
      const ack = await js.publish("wal.n1.0", bad);
      const e = await assertRejects(
        () => Array.fromAsync(readNatsStream({ servers, node: "n1" })),
        PerCoreWalError,
        `stream "WAL" message ${ack.seq} on subject "wal.n1.0"`,
      );
      assertEquals(e.code, "ChecksumMismatch");
      await assertRejects(
        () => recoverFromNats({ servers, node: "n1" }),
        PerCoreWalError,
        "checksum",
      );
      // A shipper resuming on it stops that core, naming it, and ships nothing past it.
      await using m = await PerCoreWalManager.open(config(dir.path, 1));
      await using shipper = await shipToNats(m, { servers, node: "n1" });
      await assertRejects(
        () => shipper.drained(),
        PerCoreWalError,
        `message ${ack.seq} on subject "wal.n1.0"`,
      );
      assertEquals(shipper.status().cores[0].state, "failed");
      assertEquals((await jsm.streams.info("WAL")).state.last_seq, ack.seq);
    } finally {
      await nc.close();
    }
  },
});

Deno.test({
  name: "startShipper hooks: onShipped after each ack, in order; holdAppends past the unshipped " +
    "limit during an outage, released after the catch-up",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    await using m = await PerCoreWalManager.open(config(dir.path, 2));
    const shipped: number[][] = [[], []];
    const holds: [number, boolean][] = [];
    await using shipper = await startShipper(m, {
      servers: server.url,
      node: "n1",
      maxRecordsPerMessage: 8,
      retryMaxMs: 100,
      publishTimeoutMs: 200,
    }, {
      onShipped: (c, last) => void shipped[c].push(last),
      unshippedLimitRecords: 50,
      holdAppends: (c, held) => void holds.push([c, held]),
    });
    await appendSome(m, 40, "a");
    await shipper.drained();
    assertEquals(holds, []);
    await server.kill();
    await appendSome(m, 100, "b");
    while (holds.length < 2) await new Promise((r) => setTimeout(r, 10));
    assertEquals(holds.map(([, held]) => held), [true, true]);
    await server.restart();
    await shipper.drained();
    assertEquals(holds.filter(([, held]) => !held).map(([c]) => c).sort(), [0, 1]);
    const durable = m.syncedPositions().map((p) => p.sequence);
    for (let c = 0; c < 2; c++) {
      assertEquals(shipped[c].at(-1), durable[c]);
      assert(shipped[c].every((s, i) => i === 0 || s > shipped[c][i - 1]), `core ${c} in order`);
    }
  },
});

Deno.test({
  name: "NatsShipper.close() while the server is down ends at once; drained() rejects Closed",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    await using m = await PerCoreWalManager.open(config(dir.path, 1));
    const shipper = await shipToNats(m, {
      servers: server.url,
      node: "n1",
      publishTimeoutMs: 3_600_000,
    });
    await appendSome(m, 20, "a");
    await shipper.drained();
    await server.kill();
    await appendSome(m, 20, "b");
    const drained = shipper.drained();
    drained.catch(() => {}); // checked below, after close()
    while (shipper.status().cores[0].state !== "shipping") {
      await new Promise((r) => setTimeout(r, 10));
    }
    // A publish waits for an hour-long timeout: close must not wait for it.
    await shipper.close();
    await assertRejects(() => drained, PerCoreWalError, "closed before it drained");
    assertEquals(shipper.status().connection, "closed");
    assertEquals(shipper.status().cores[0].state, "stopped");
  },
});

Deno.test({
  name:
    "shipToNats: checkpoints keep the segments the stream has not acknowledged (server down), " +
    "and retire them once shipped; the registration survives a restart",
  ignore,
  async fn() {
    await using dir = await tempDir();
    const server = await NatsServer.start(`${dir.path}/nats`);
    try {
      const segments = () =>
        [...Deno.readDirSync(`${dir.path}/wal`)].filter((e) => e.name.startsWith("wal-0-")).length;
      {
        await using m = await PerCoreWalManager.open(config(dir.path, 1));
        const coordinator = new CheckpointCoordinator(m, { retain: 1 });
        await using shipper = await shipToNats(m, { servers: server.url, node: "n1" });
        await appendSome(m, 100, "a");
        await shipper.drained();
        await server.kill(); // nothing more is acknowledged
        await appendSome(m, 3000, "b"); // many 64 KiB segments
        const before = segments();
        assert(before > 3, `${before} segments`);
        await coordinator.checkpoint();
        await coordinator.checkpoint();
        // The checkpoints' own records may open a segment: fewer files would mean a retirement.
        assert(segments() >= before, `nothing unshipped was retired: ${segments()} of ${before}`);
      }
      const marks = ShipMarks.list(`${dir.path}/wal`);
      assertEquals(marks.map((x) => x.name), ["WAL-n1"], "the registration is kept across close");
      await server.restart();
      {
        await using m = await PerCoreWalManager.open(config(dir.path, 1));
        {
          await using shipper = await shipToNats(m, { servers: server.url, node: "n1" });
          await shipper.drained();
        }
        const before = segments();
        const coordinator = new CheckpointCoordinator(m, { retain: 1 });
        await coordinator.checkpoint();
        await coordinator.checkpoint();
        assert(segments() < before, `shipped segments retired: ${segments()} of ${before}`);
      }
      await checkStream(server.url, "WAL");
    } finally {
      await server[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name: "shipToNats({ maxUnshippedRecords }): with the server down, appends meet Backpressure " +
    "past the limit, and go through again once the stream caught up",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    await using m = await PerCoreWalManager.open(config(dir.path, 1));
    const w = m.writer(0);
    {
      await using shipper = await shipToNats(m, {
        servers: server.url,
        node: "n1",
        maxUnshippedRecords: 500,
        retryMaxMs: 50,
      });
      await appendSome(m, 100, "a");
      await shipper.drained();
      await server.kill();
      let refused: PerCoreWalError | undefined;
      for (let i = 0; i < 20_000 && refused === undefined; i++) {
        try {
          w.appendPut(`k${i}`, "v");
          if (i % 100 === 99) await w.sync();
        } catch (e) {
          if (!(e instanceof PerCoreWalError) || e.code !== "Backpressure") throw e;
          refused = e;
        }
      }
      const held = refused as PerCoreWalError | undefined;
      if (held === undefined) throw new Error("the appends were never held");
      assert(/unshipped/.test(held.message), held.message);
      // Held only past the limit (it is checked after each acknowledgement and every 50 ms, so
      // a fast producer may go beyond it by what it appends meanwhile).
      const unshipped = w.durableSequence - shipper.status().cores[0].lastShippedSequence;
      assert(unshipped > 500, `held at ${unshipped} unshipped entries`);
      await server.restart();
      await shipper.drained();
      // Released once under the limit (checked after each acknowledgement).
      w.appendPut("after", "v");
      await w.sync();
    }
    // Closing the shipper releases a hold too.
    assertEquals(typeof w.appendPut("closed", "v"), "number");
    await w.sync();
  },
});

Deno.test({
  name: "shipToNats: a shipper that cannot start leaves no registration behind; " +
    "maxUnshippedRecords with a directory source is refused",
  ignore,
  async fn() {
    await using dir = await tempDir();
    {
      await using m = await PerCoreWalManager.open(config(dir.path, 1));
      m.writer(0).appendPut("k", "v");
    }
    const walDir = `${dir.path}/wal`;
    await assertRejects(
      () =>
        shipToNats(walDir, { servers: "nats://127.0.0.1:1", node: "n1", maxUnshippedRecords: 5 }),
      TypeError,
      "maxUnshippedRecords",
    );
    await assertRejects(() =>
      shipToNats(walDir, {
        servers: "nats://127.0.0.1:1",
        node: "n1",
        connection: { reconnect: false, timeout: 200 },
      })
    );
    assertEquals(ShipMarks.list(walDir), [], "no registration left by a failed start");
  },
});
