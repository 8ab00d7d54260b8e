// The unshipped limits of shipToNats: the unshipped measure in bytes of the WAL (UnshippedMeter,
// against a count of the records' lengths), maxUnshippedBytes holding appends while the server
// is down, and the opt-in dropOldest that gives up the oldest sealed segments with a declared gap
// in the stream. With a real nats-server, stopped by its process id.
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import type { WalEvent } from "../src/events.ts";
import { SEGMENT_DATA_OFFSET } from "../src/format.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { decodeFrame, encodeGapFrame, FRAME_FLAG_GAP } from "../src/ship/frame.ts";
import { readNatsStream, recoverFromNats, type ShippedGap } from "../src/ship/read.ts";
import { shipToNats } from "../src/ship/ship_to_nats.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { UnshippedMeter } from "../src/ship/unshipped.ts";
import type { PerCoreWalEntry } from "../src/types.ts";
import { CoreFollower, type EntryEnds, pollingSource } from "../src/watch.ts";
import { ignoreWithoutUring, readCore, runDeno, tempDir } from "./_helpers.ts";
import { checkStream, ignoreWithoutNats, NatsServer } from "./_nats.ts";

const SEGMENT_BYTES = 64 * 1024;

function config(dir: string, cores = 1) {
  return new PerCoreWalConfig(`${dir}/wal`, cores, { segmentSizeBytes: SEGMENT_BYTES });
}

/**
 * Every record of core 0 with the sequence it ends at and the bytes it takes: its length
 * (padding included) and whatever lies between it and the record before it in its segment
 * (the batch markers, which the reader skips).
 */
async function recordLengths(cfg: PerCoreWalConfig): Promise<{ last: number; length: number }[]> {
  const out: { last: number; length: number }[] = [];
  for (const s of listCoreSegments(cfg, 0)) {
    let prevEnd = SEGMENT_DATA_OFFSET;
    await using r = await PerCoreWalReader.open(s.path, { isLastSegment: false });
    const entries: PerCoreWalEntry[] = [];
    const offsets: number[] = [];
    const lengths: number[] = [];
    while (true) {
      const { count, end } = await r.readEntries(entries, offsets, lengths);
      for (let i = 0; i < count; i++) {
        // An atomic batch: its entries before the last have length 0, the last the record's.
        const e = entries[i];
        if (e.batchLast !== undefined && e.batchLast !== e.sequence) continue;
        out.push({ last: entries[i].sequence, length: offsets[i] + lengths[i] - prevEnd });
        prevEnd = offsets[i] + lengths[i];
      }
      if (end !== undefined) break;
    }
  }
  return out;
}

Deno.test({
  name: "UnshippedMeter.measure() counts the bytes of the records after the mark up to the " +
    "durable end, across segments, read on incrementally",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path);
    await using m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    for (let i = 0; i < 1500; i++) {
      if (i % 50 === 0) {
        w.appendBatch([
          { type: "put", key: `b${i}`, value: "x".repeat(300) },
          { type: "delete", key: `b${i - 50}` },
        ]);
      } else {
        w.appendPut(`k${i}`, "v".repeat(i % 200));
      }
      if (i % 100 === 99) await w.sync();
    }
    await w.sync();
    const end = m.syncedPositions()[0];
    assert(end.segment >= 3, `the WAL spans segments (it ends in segment ${end.segment})`);
    const records = await recordLengths(cfg);
    const meter = new UnshippedMeter(cfg, 0);
    // Marks at record ends, growing (the meter reads on from where it was), then from scratch.
    const marks = [0, ...records.filter((_, i) => i % 97 === 0).map((r) => r.last), end.sequence];
    for (const fresh of [false, true]) {
      for (const mark of marks) {
        const expected = records.filter((r) => r.last > mark && r.last <= end.sequence)
          .reduce((n, r) => n + r.length, 0);
        const got = await (fresh ? new UnshippedMeter(cfg, 0) : meter).measure(mark, end);
        assertEquals(got.bytes, expected, `bytes after sequence ${mark}`);
        assertEquals(got.spans.reduce((n, s) => n + s.bytes, 0), got.bytes);
        if (got.spans.length > 0) {
          assertEquals(got.spans[0].firstSequence, mark + 1);
          assertEquals(got.spans[got.spans.length - 1].lastSequence, end.sequence);
          assert(got.spans.every((s) => s.sealed === s.segment < end.segment));
        }
      }
    }
    // Without a durable end: up to the end of the valid records in the files.
    assertEquals(
      (await new UnshippedMeter(cfg, 0).measure(0)).bytes,
      (await meter.measure(0, end)).bytes,
    );
    // Where a follower says each entry ends (the shipper's hint): the same bytes, nothing read
    // up to the mark.
    const ends: EntryEnds = { segment: [], offset: [] };
    const follower = new CoreFollower(cfg, 0, pollingSource(10));
    const read: PerCoreWalEntry[] = [];
    while (read.length < end.sequence) read.push(...await follower.read(4096, Infinity, ends));
    assertEquals(ends.offset.length, read.length);
    for (const mark of marks.slice(1)) {
      const i = read.findIndex((e) => e.sequence === mark);
      const at = { segment: ends.segment[i], offset: ends.offset[i], next: mark + 1 };
      const expected = records.filter((r) => r.last > mark && r.last <= end.sequence)
        .reduce((n, r) => n + r.length, 0);
      const got = await new UnshippedMeter(cfg, 0).measure(mark, end, at);
      assertEquals(got.bytes, expected, `bytes after sequence ${mark}, from the follower's end`);
    }
  },
});

Deno.test({
  name: "shipToNats({ maxUnshippedBytes }): with the server down, appends meet Backpressure " +
    "past the byte limit; after a restart the shipper catches up, the hold is released, and " +
    "the stream holds every record once, in order",
  ignore: ignoreWithoutNats || ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const events: WalEvent[] = [];
    const released = Promise.withResolvers<void>();
    const limit = 100_000;
    {
      await using m = await PerCoreWalManager.open(config(dir.path), {
        onEvent: (e) => {
          events.push(e);
          if (e.type === "backpressureEnded") released.resolve();
        },
      });
      const w = m.writer(0);
      await using shipper = await shipToNats(m, {
        servers: server.url,
        node: "n1",
        maxUnshippedBytes: limit,
        retryMaxMs: 50,
        publishTimeoutMs: 500,
      });
      for (let i = 0; i < 200; i++) w.appendPut(`a${i}`, "v".repeat(100));
      await w.sync();
      await shipper.drained();
      await server.kill();
      let refused: PerCoreWalError | undefined;
      for (let i = 0; i < 100_000 && refused === undefined; i++) {
        try {
          w.appendPut(`k${i}`, "v".repeat(100));
          if (i % 100 === 99) await w.sync();
        } catch (e) {
          if (!(e instanceof PerCoreWalError) || e.code !== "Backpressure") throw e;
          refused = e;
        }
      }
      if (refused === undefined) throw new Error("the appends were never held");
      assert(/unshipped limit/.test(refused.message), refused.message);
      await w.sync();
      const s = shipper.status().cores[0];
      assert(s.unshippedBytes > limit, `held at ${s.unshippedBytes} unshipped bytes`);
      assert(
        events.some((e) =>
          e.type === "backpressureBegan" && e.cause === "unshippedLimit" &&
          /100000 bytes/.test(e.reason ?? "")
        ),
        "a backpressureBegan event naming the byte limit",
      );
      await server.restart();
      await shipper.drained();
      await released.promise;
      assert(shipper.status().cores[0].unshippedBytes <= limit);
      w.appendPut("after", "v");
      await w.sync();
      await shipper.drained();
    }
    const wal = await readCore(config(dir.path), 0);
    const last = await checkStream(server.url, "WAL");
    assertEquals(last.get("wal.n1.0"), wal.length, "every record shipped, once, in order");
    assertEquals(wal[wal.length - 1].operation, {
      type: "put",
      key: new TextEncoder().encode("after"),
      value: new TextEncoder().encode("v"),
    });
  },
});

Deno.test({
  name: "maxUnshippedBytes with a directory source and backpressure is refused",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    {
      await using m = await PerCoreWalManager.open(config(dir.path));
      m.writer(0).appendPut("k", "v");
    }
    await assertRejects(
      () =>
        shipToNats(`${dir.path}/wal`, {
          servers: "nats://127.0.0.1:1",
          node: "n1",
          maxUnshippedBytes: 5,
        }),
      TypeError,
      "maxUnshippedBytes",
    );
  },
});

Deno.test("encodeGapFrame / decodeFrame: a gap marker names its range, carries no entry", () => {
  const bytes = encodeGapFrame(3, 11, 40);
  assertEquals(bytes.length, 36);
  assertEquals(bytes[5], FRAME_FLAG_GAP);
  assertEquals(decodeFrame(bytes), {
    coreId: 3,
    firstSequence: 11,
    lastSequence: 40,
    entries: [],
    gap: true,
  });
  const flipped = bytes.slice();
  flipped[20] ^= 1;
  assertThrows(() => decodeFrame(flipped), PerCoreWalError, "checksum");
  assertThrows(() => encodeGapFrame(0, 5, 4), RangeError);
});

Deno.test({
  name: 'shipToNats({ onUnshippedLimit: "dropOldest" }): with the server down, appends go on, ' +
    "the oldest sealed segments are given up loudly, and the stream holds every other record " +
    "once, in order, with the gap declared and reported by the readers",
  ignore: ignoreWithoutNats || ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const dropped: Extract<WalEvent, { type: "unshippedDropped" }>[] = [];
    let sawDrop = Promise.withResolvers<void>();
    const limit = 100_000;
    {
      await using m = await PerCoreWalManager.open(config(dir.path), {
        onEvent: (e) => {
          if (e.type === "backpressureBegan") throw new Error("appends were held");
          if (e.type !== "unshippedDropped") return;
          dropped.push(e);
          sawDrop.resolve();
        },
      });
      const w = m.writer(0);
      await using shipper = await shipToNats(m, {
        servers: server.url,
        node: "n1",
        maxUnshippedBytes: limit,
        onUnshippedLimit: "dropOldest",
        retryMaxMs: 50,
        publishTimeoutMs: 300,
      });
      for (let i = 0; i < 200; i++) w.appendPut(`a${i}`, "v".repeat(100));
      await w.sync();
      await shipper.drained();
      await server.kill();
      // Never refused: 400 KiB and more while the limit is 100 KB.
      for (let i = 0; i < 3000; i++) {
        w.appendPut(`k${i}`, "v".repeat(100));
        if (i % 100 === 99) await w.sync();
      }
      await w.sync();
      await sawDrop.promise;
      sawDrop = Promise.withResolvers<void>();
      for (let i = 0; i < 1000; i++) {
        w.appendPut(`l${i}`, "w".repeat(100));
        if (i % 100 === 99) await w.sync();
      }
      await w.sync();
      await server.restart();
      await shipper.drained();
      const s = shipper.status().cores[0];
      assertEquals(s.lastShippedSequence, w.durableSequence);
    }
    assert(dropped.length > 0);
    const droppedSeqs = new Set<number>();
    for (const e of dropped) {
      assertEquals(e.coreId, 0);
      assert(e.bytes !== undefined && e.bytes > 0, `bytes ${e.bytes}`);
      for (let q = e.fromSequence; q <= e.toSequence; q++) {
        assert(!droppedSeqs.has(q), `sequence ${q} dropped twice`);
        droppedSeqs.add(q);
      }
    }
    assert(!droppedSeqs.has(1) && droppedSeqs.size < 4200, "only some were dropped");
    // The stream: every record but the dropped ones, once, in order; the gaps declared.
    const wal = await readCore(config(dir.path), 0);
    const gaps: ShippedGap[] = [];
    const read: PerCoreWalEntry[] = [];
    for await (
      const e of readNatsStream({
        servers: server.url,
        node: "n1",
        onGap: (g) => gaps.push(g),
      })
    ) {
      const { node: _, streamSequence: __, ...entry } = e;
      read.push(entry);
    }
    assertEquals(read, wal.filter((e) => !droppedSeqs.has(e.sequence)));
    const declared = new Set<number>();
    for (const g of gaps) for (let q = g.fromSequence; q <= g.toSequence; q++) declared.add(q);
    assertEquals([...declared].sort((a, b) => a - b), [...droppedSeqs].sort((a, b) => a - b));
    const r = await recoverFromNats({ servers: server.url, node: "n1" });
    assertEquals(
      r.gaps.map((g) => [g.fromSequence, g.toSequence]),
      gaps.map((g) => [g.fromSequence, g.toSequence]),
    );
    assertEquals(r.entriesReplayed, read.length);
    // Local recovery is untouched: the segments stay until a checkpoint covers them.
    using local = await recoverPerCore(`${dir.path}/wal`);
    assertEquals(local.entriesReplayed, wal.length);
  },
});

Deno.test({
  name: 'onUnshippedLimit: "dropOldest" without a limit or without retain is refused',
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using m = await PerCoreWalManager.open(config(dir.path));
    for (const extra of [{}, { maxUnshippedBytes: 10, retain: false }]) {
      await assertRejects(
        () =>
          shipToNats(m, {
            servers: "nats://127.0.0.1:1",
            node: "n1",
            onUnshippedLimit: "dropOldest",
            ...extra,
          }),
        TypeError,
        "dropOldest",
      );
    }
  },
});

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env", "--allow-net"];

Deno.test({
  name: "wal ship --max-unshipped-bytes N --drop-oldest: every record is in the stream or in a " +
    "declared gap, once, in order, each drop on stderr; --max-unshipped-bytes alone is a usage error",
  ignore: ignoreWithoutNats || ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    {
      await using m = await PerCoreWalManager.open(config(dir.path));
      for (let i = 0; i < 3000; i++) {
        m.writer(0).appendPut(`k${i}`, "v".repeat(100));
        if (i % 100 === 99) await m.syncAll();
      }
      await m.syncAll();
    }
    const walDir = `${dir.path}/wal`;
    const common = ["ship", walDir, "--server", server.url, "--stream", "WAL", "--node", "n1"];
    const alone = await runDeno(["run", ...PERMS, CLI, ...common, "--max-unshipped-bytes", "1"]);
    assertEquals(alone.code, 2, alone.stderr);
    assertStringIncludes(alone.stderr, "--drop-oldest");
    const r = await runDeno(
      [
        "run",
        ...PERMS,
        CLI,
        ...common,
        "--once",
        "--max-unshipped-bytes",
        "50000",
        "--drop-oldest",
      ],
      120_000,
    );
    assertEquals(r.code, 0, r.stderr);
    const gaps: ShippedGap[] = [];
    const read: number[] = [];
    for await (const e of readNatsStream({ servers: server.url, onGap: (g) => gaps.push(g) })) {
      read.push(e.sequence);
    }
    const covered = [...read];
    for (const g of gaps) for (let q = g.fromSequence; q <= g.toSequence; q++) covered.push(q);
    covered.sort((a, b) => a - b);
    assertEquals(covered, Array.from({ length: 3000 }, (_, i) => i + 1));
    const lines = r.stderr.split("\n").filter((l) => l.includes("dropped unshipped"));
    assertEquals(lines.length > 0, gaps.length > 0, r.stderr);
  },
});

Deno.test({
  name: "UnshippedMeter: a segment sealed between two measures counts the same as measured afresh",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const cfg = config(dir.path);
    await using m = await PerCoreWalManager.open(cfg);
    const w = m.writer(0);
    const meter = new UnshippedMeter(cfg, 0);
    const filesMeter = new UnshippedMeter(cfg, 0);
    let mark = 0;
    let sealedSeen = 0;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 37; i++) {
        w.appendPut(`k${round}-${i}`, "v".repeat((round * 37 + i) % 300));
      }
      await w.sync();
      const end = m.syncedPositions()[0];
      // The mark trails the durable end: the segment of the last measure's end gets sealed.
      mark = Math.max(mark, end.sequence - 150);
      const got = await meter.measure(mark, end);
      const fresh = await new UnshippedMeter(cfg, 0).measure(mark, end);
      assertEquals(got, fresh, `round ${round}: durable end ${end.sequence} in ${end.segment}`);
      // Without a durable end (another process's files), read on from the last measure.
      assertEquals(await filesMeter.measure(mark), fresh, `round ${round}: to the files' end`);
      sealedSeen = Math.max(sealedSeen, got.spans.filter((s) => s.sealed).length);
    }
    assert(sealedSeen > 0, "some measures counted a sealed segment");
  },
});
