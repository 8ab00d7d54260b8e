// deno task bench:ship [--records N] [--lag-seconds S] [--rate R] [--json]
//
// Shipping to a local nats-server (started here with JetStream on a free port and a temporary
// store, stopped by its process id):
// 1. Throughput: a WAL of N W1 records (128 bytes: 16-byte key, 112-byte value) on 2 cores,
//    shipped from scratch with `wal ship --once` semantics (a directory source, `drained()`):
//    records/s from the shipper's start to the last acknowledgement.
// 2. Lag: a W1-like load (128-byte puts, syncAll() after each millisecond's appends) paced at
//    two rates in all, each on a new WAL: 125,000 records/s (half the goal's 250k: the issue's
//    "half that rate") and half the rate of 1 (or R alone, with --rate), appended through a
//    manager that a shipper follows; per record the time from its append() call to the moment
//    status() shows it acknowledged (status is looked at every millisecond, so each figure may
//    be up to about 1 ms high): p50, p99, max.
// The goal on this machine (issue 17): >= 250k records/s shipped, lag p99 < 50 ms at half that
// rate (125k records/s).
import { PerCoreWalConfig, PerCoreWalManager } from "../mod.ts";
import { shipToNats } from "../ship.ts";
import { NatsServer } from "../tests/_nats.ts";

const args = Deno.args;
function flag(name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const n = Number(args[i + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`--${name} must be a positive number`);
  return n;
}
const RECORDS = Math.floor(flag("records", 400_000));
const LAG_SECONDS = flag("lag-seconds", 10);
const JSON_OUT = args.includes("--json");

const key = new Uint8Array(16);
const kv = new DataView(key.buffer);
const value = new Uint8Array(112).fill(0x5a);
const SYNC_EVERY = 512;

const tmp = await Deno.makeTempDir({ prefix: "ship_bench_" });
await using server = await NatsServer.start(`${tmp}/nats`);

// 1. Throughput, from scratch.
const walDir = `${tmp}/wal`;
{
  await using m = await PerCoreWalManager.open(
    new PerCoreWalConfig(walDir, 2, { segmentSizeBytes: 64 * 1024 * 1024 }),
  );
  const pending: Promise<void>[] = [];
  for (let i = 0; i < RECORDS / 2; i++) {
    kv.setUint32(0, i, true);
    for (let c = 0; c < 2; c++) {
      kv.setUint32(4, c, true);
      m.writer(c).appendPut(key, value);
    }
    if (i % SYNC_EVERY === SYNC_EVERY - 1) {
      pending.push(m.syncAll());
      if (pending.length >= 8) await pending.shift();
    }
  }
  await m.syncAll();
}
const t0 = performance.now();
{
  await using shipper = await shipToNats(walDir, { servers: server.url, node: "tput" });
  await shipper.drained();
}
const shipSeconds = (performance.now() - t0) / 1000;
const shippedPerSecond = Math.floor(RECORDS / shipSeconds);

// 2. Lag at paced rates: half the goal's rate (the "half that rate") and half the rate
// just measured (or R alone).
const GOAL_RATE = 250_000;
const asked = args.includes("--rate") ? [Math.floor(flag("rate", 1))] : [
  GOAL_RATE / 2,
  Math.floor(shippedPerSecond / 2),
];
const lagRuns: {
  lagRateRecordsPerSecond: number;
  lagRecords: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}[] = [];
for (const [i, rate] of asked.entries()) lagRuns.push(await lagAt(rate, `lag${i}`));

async function lagAt(RATE: number, node: string) {
  const lags: number[] = [];

  await using m = await PerCoreWalManager.open(
    new PerCoreWalConfig(`${tmp}/${node}`, 2, { segmentSizeBytes: 64 * 1024 * 1024 }),
  );
  await using shipper = await shipToNats(m, { servers: server.url, node });
  const appendedAt: number[][] = [[], []]; // per core, index sequence - 1
  const acked = [0, 0];
  let done = false;
  const watcher = (async () => {
    while (!done || acked.some((a, c) => a < appendedAt[c].length)) {
      const now = performance.now();
      for (const s of shipper.status().cores) {
        for (let q = acked[s.coreId]; q < s.lastShippedSequence; q++) {
          lags.push(now - appendedAt[s.coreId][q]);
        }
        acked[s.coreId] = Math.max(acked[s.coreId], s.lastShippedSequence);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  const start = performance.now();
  let written = 0;
  while (performance.now() - start < LAG_SECONDS * 1000) {
    // Pace: append what the rate allows by now, a millisecond at a time.
    const due = Math.floor(((performance.now() - start) / 1000) * RATE);
    while (written < due) {
      const c = written % 2;
      kv.setUint32(0, written, true);
      m.writer(c).appendPut(key, value);
      appendedAt[c].push(performance.now());
      written++;
    }
    await m.syncAll();
    await new Promise((r) => setTimeout(r, 1));
  }
  await m.syncAll();
  await shipper.drained();
  done = true;
  await watcher;

  lags.sort((a, b) => a - b);
  const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor((p / 100) * lags.length))];
  return {
    lagRateRecordsPerSecond: RATE,
    lagRecords: lags.length,
    lagP50Ms: Number(pct(50).toFixed(2)),
    lagP99Ms: Number(pct(99).toFixed(2)),
    lagMaxMs: Number((lags.at(-1) ?? 0).toFixed(2)),
  };
}

const result = {
  records: RECORDS,
  shipSeconds: Number(shipSeconds.toFixed(3)),
  shippedRecordsPerSecond: shippedPerSecond,
  lag: lagRuns,
};
await server.kill();
await Deno.remove(tmp, { recursive: true });
if (JSON_OUT) console.log(JSON.stringify(result));
else {
  console.log(
    `shipped ${RECORDS} records (2 cores, from scratch) in ${result.shipSeconds} s: ` +
      `${shippedPerSecond} records/s`,
  );
  for (const l of lagRuns) {
    console.log(
      `lag at ${l.lagRateRecordsPerSecond} records/s (${l.lagRecords} records): ` +
        `p50 ${l.lagP50Ms} ms, p99 ${l.lagP99Ms} ms, max ${l.lagMaxMs} ms`,
    );
  }
}
