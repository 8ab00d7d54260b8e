// A declared gap survives a restart of the shipper (onUnshippedLimit: "dropOldest"): the range
// given up while the server is down reaches the stream as a gap marker, also when the shipper
// closes before publishing it, with or without a checkpoint retiring the dropped segments; and a
// mark ahead of the stream with no gap recorded (marks from before, a stream that lost messages)
// is shipped if the WAL holds the range, declared loudly if not. Real nats-server, killed by pid.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import type { WalEvent } from "../src/events.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { scanSegment } from "../src/segment_probes.ts";
import { readNatsStream, type ShippedGap } from "../src/ship/read.ts";
import type { ShipToNatsOptions } from "../src/ship/options.ts";
import { shipToNats } from "../src/ship/ship_to_nats.ts";
import { encodeShipperMarks, marksPath, ShipMarks } from "../src/ship_marks.ts";
import type { PerCoreWalEntry } from "../src/types.ts";
import { readWalMeta } from "../src/wal_meta.ts";
import { ignoreWithoutUring, readCore, tempDir } from "./_helpers.ts";
import { checkStream, ignoreWithoutNats, NatsServer } from "./_nats.ts";

type Dropped = Extract<WalEvent, { type: "unshippedDropped" }>;

function config(dir: string) {
  return new PerCoreWalConfig(`${dir}/wal`, 1, { segmentSizeBytes: 64 * 1024 });
}

const SHIP = { node: "n1", retryMaxMs: 50, publishTimeoutMs: 300 };
const DROP = { ...SHIP, maxUnshippedBytes: 100_000, onUnshippedLimit: "dropOldest" as const };

/** The first sequence core 0's oldest segment holds. */
async function firstHeld(cfg: PerCoreWalConfig): Promise<number> {
  const oldest = listCoreSegments(cfg, 0)[0];
  const { header } = await scanSegment(oldest.path, { maxRecordBytes: 1 << 20 });
  return header!.firstSequence;
}

/**
 * Ships 200 records, kills the server, appends 3000 more until the shipper drops some, closes
 * the shipper (its gap marker never published) and the manager. Returns the dropped sequences.
 */
async function dropWhileDown(dir: string, server: NatsServer): Promise<Set<number>> {
  const dropped: Dropped[] = [];
  const sawDrop = Promise.withResolvers<void>();
  {
    await using m = await PerCoreWalManager.open(config(dir), {
      onEvent: (e) => {
        if (e.type !== "unshippedDropped") return;
        dropped.push(e);
        sawDrop.resolve();
      },
    });
    const w = m.writer(0);
    await using shipper = await shipToNats(m, { servers: server.url, ...DROP });
    for (let i = 0; i < 200; i++) w.appendPut(`a${i}`, "v".repeat(100));
    await w.sync();
    await shipper.drained();
    await server.kill();
    for (let i = 0; i < 3000; i++) {
      w.appendPut(`k${i}`, "v".repeat(100));
      if (i % 100 === 99) await w.sync();
    }
    await w.sync();
    await sawDrop.promise;
  }
  const seqs = new Set<number>();
  for (const e of dropped) for (let q = e.fromSequence; q <= e.toSequence; q++) seqs.add(q);
  assert(seqs.size > 0 && !seqs.has(200), "a drop after what was shipped");
  return seqs;
}

/**
 * The whole stream: each core's messages chain exactly (every sequence once, in order, gaps only
 * as markers); the entries read are the WAL's but `declared`, which the markers name exactly.
 */
async function checkWhole(
  server: NatsServer,
  wal: PerCoreWalEntry[],
  end: number,
  declared: Set<number>,
): Promise<void> {
  const last = await checkStream(server.url, "WAL");
  assertEquals(last.get("wal.n1.0"), end, "the stream reaches the WAL's end");
  const gaps: ShippedGap[] = [];
  const read: PerCoreWalEntry[] = [];
  for await (const e of readNatsStream({ servers: server.url, onGap: (g) => gaps.push(g) })) {
    const { node: _, streamSequence: __, ...entry } = e;
    read.push(entry);
  }
  const inGaps = new Set<number>();
  for (const g of gaps) for (let q = g.fromSequence; q <= g.toSequence; q++) inGaps.add(q);
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  assertEquals(sorted(inGaps), sorted(declared), "the gaps declared are the ranges given up");
  assertEquals(
    read.map((e) => e.sequence),
    Array.from({ length: end }, (_, i) => i + 1).filter((q) => !declared.has(q)),
    "every other entry once, in order",
  );
  // What the WAL still holds (a checkpoint may have retired the oldest) is what was shipped.
  const bySeq = new Map(read.map((e) => [e.sequence, e]));
  for (const e of wal) if (!declared.has(e.sequence)) assertEquals(bySeq.get(e.sequence), e);
}

/** A new shipper on a reopened manager: ships on, appends 10 more; returns the events. */
async function shipAgain(
  dir: string,
  server: NatsServer,
  options: Omit<ShipToNatsOptions, "servers">,
): Promise<{ events: Dropped[]; end: number }> {
  const events: Dropped[] = [];
  await using m = await PerCoreWalManager.open(config(dir), {
    onEvent: (e) => e.type === "unshippedDropped" && events.push(e),
  });
  await using shipper = await shipToNats(m, { servers: server.url, ...options });
  for (let i = 0; i < 10; i++) m.writer(0).appendPut(`z${i}`, "after");
  await m.syncAll();
  await shipper.drained();
  const s = shipper.status().cores[0];
  assertEquals([s.state === "failed", s.error], [false, undefined]);
  return { events, end: m.writer(0).durableSequence };
}

Deno.test({
  name: "dropOldest: a drop made while the server is down, the shipper closed before its " +
    "marker, then a checkpoint retiring the dropped segments: the next shipper declares the " +
    "gap and ships on (no Retired)",
  ignore: ignoreWithoutNats || ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const dropped = await dropWhileDown(dir.path, server);
    const cfg = config(dir.path);
    {
      await using m = await PerCoreWalManager.open(cfg);
      await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
    }
    const first = Math.min(...dropped);
    assert((await firstHeld(cfg)) > first, "the checkpoint retired dropped segments");
    await server.restart();
    // dropOldest again, with a limit the catching up never crosses (a drop of its own is not
    // what this test is about).
    const again = { ...DROP, maxUnshippedBytes: 10_000_000 };
    const { events, end } = await shipAgain(dir.path, server, again);
    assertEquals(events, [], "the drop was told once, by the shipper that made it");
    await checkWhole(server, await readCore(cfg, 0), end, dropped);
  },
});

Deno.test({
  name: "dropOldest: a drop made while the server is down, the shipper closed before its " +
    "marker: the next shipper declares the gap (the range is not shipped after all)",
  ignore: ignoreWithoutNats || ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const dropped = await dropWhileDown(dir.path, server);
    await server.restart();
    // A shipper without the limit takes up the recorded gap all the same.
    const { events, end } = await shipAgain(dir.path, server, SHIP);
    assertEquals(events, []);
    await checkWhole(server, await readCore(config(dir.path), 0), end, dropped);
    assertEquals(ShipMarks.list(config(dir.path))[0].gaps, [], "the gap is cleared once shipped");
  },
});

/**
 * A mark ahead of the stream with no gap recorded: 200 records shipped, 3000 more appended
 * with no shipper, then the marks file rewritten as a version 1 file (from before the gaps were
 * kept) whose mark says 2500 (a drop of that version, or a stream that lost what it
 * acknowledged); with `retire`, a checkpoint retires what that mark allows.
 */
async function markAhead(dir: string, server: NatsServer, retire: boolean): Promise<void> {
  const cfg = config(dir);
  await using m = await PerCoreWalManager.open(cfg);
  const w = m.writer(0);
  {
    await using shipper = await shipToNats(m, { servers: server.url, ...SHIP });
    for (let i = 0; i < 200; i++) w.appendPut(`a${i}`, "v".repeat(100));
    await w.sync();
    await shipper.drained();
  }
  for (let i = 0; i < 3000; i++) {
    w.appendPut(`k${i}`, "v".repeat(100));
    if (i % 100 === 99) await w.sync();
  }
  await w.sync();
  const walId = readWalMeta(cfg.baseDir)!.walId!;
  Deno.writeFileSync(
    marksPath(cfg.baseDir, "WAL-n1"),
    encodeShipperMarks("WAL-n1", walId, [2500], new Date(), [], 1),
  );
  if (retire) await new CheckpointCoordinator(m, { retain: 1 }).checkpoint();
}

Deno.test({
  name: "a mark ahead of the stream, no gap recorded, the range retired: the next shipper " +
    "declares what the WAL lacks (event with its reason, marker) and ships the rest",
  ignore: ignoreWithoutNats || ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    await markAhead(dir.path, server, true);
    const first = await firstHeld(config(dir.path));
    assert(first > 201 && first <= 2501, `the checkpoint retired up to ${first - 1}`);
    const { events, end } = await shipAgain(dir.path, server, SHIP);
    assertEquals(events.length, 1, "declared loudly, once");
    assertEquals([events[0].fromSequence, events[0].toSequence], [201, first - 1]);
    assertStringIncludes(events[0].reason ?? "", "retired");
    const lost = new Set(Array.from({ length: first - 201 }, (_, i) => 201 + i));
    await checkWhole(server, await readCore(config(dir.path), 0), end, lost);
  },
});

Deno.test({
  name: "a mark ahead of the stream, no gap recorded, the range still in the WAL: the next " +
    "shipper ships it (no gap, no event)",
  ignore: ignoreWithoutNats || ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    await markAhead(dir.path, server, false);
    const { events, end } = await shipAgain(dir.path, server, SHIP);
    assertEquals(events, []);
    await checkWhole(server, await readCore(config(dir.path), 0), end, new Set());
    const [marks] = ShipMarks.list(config(dir.path));
    assertEquals([marks.shipped, marks.gaps], [[end], []]);
  },
});
