// deno task bench: durable throughput through PerCoreWalManager (one Worker per core) with 1
// and 2 cores, and 64 concurrent producers each awaiting its own record, next to plain Deno.
// 128-byte records (16-byte key, 112-byte value). Data in bench/.data, removed at each start.
import { PerCoreWalConfig, PerCoreWalManager } from "../mod.ts";
import { CoreLog } from "../src/core_log.ts";
import { BATCH, keys, PlainLog, value } from "./_plain.ts";

const DATA = new URL("./.data/manager", import.meta.url).pathname;
await Deno.remove(DATA, { recursive: true }).catch(() => {});
Deno.mkdirSync(DATA, { recursive: true });
const plain = new PlainLog(`${DATA}/plain.log`);
const plainWrite = (n: number) => plain.write(n);

const one = await PerCoreWalManager.open(new PerCoreWalConfig(`${DATA}/one`, 1));
const two = await PerCoreWalManager.open(new PerCoreWalConfig(`${DATA}/two`, 2));
const group = await PerCoreWalManager.open(new PerCoreWalConfig(`${DATA}/group`, 1));
const engine = await CoreLog.open(new PerCoreWalConfig(`${DATA}/engine`, 1), 0);
// Each log zero-fills its next 64 MiB segment in the background after opening: let that finish
// so that the first samples measure appends, not the initial preallocation.
await new Promise((r) => setTimeout(r, 3000));

Deno.bench({
  name: "plain Deno: 512 records, writeSync + syncDataSync",
  group: "durable: 512 records per sync, per core",
  baseline: true,
  fn: () => plainWrite(BATCH),
});

Deno.bench({
  name: "manager, 1 core: 512 appends + await sync()",
  group: "durable: 512 records per sync, per core",
  async fn() {
    const w = one.writer(0);
    for (let i = 0; i < BATCH; i++) w.appendPut(keys[i], value);
    await w.sync();
  },
});

Deno.bench({
  name: "manager, 2 cores: 512 appends on each + await syncAll() (1024 records)",
  group: "durable: 512 records per sync, per core",
  async fn() {
    const a = two.writer(0);
    const b = two.writer(1);
    for (let i = 0; i < BATCH; i++) {
      a.appendPut(keys[i], value);
      b.appendPut(keys[i], value);
    }
    await two.syncAll();
  },
});

Deno.bench({
  name: "plain Deno: 8 x 512 records, one after the other",
  group: "durable: 8 syncs of 512 records in flight, per core",
  baseline: true,
  fn() {
    for (let k = 0; k < 8; k++) plainWrite(BATCH);
  },
});

Deno.bench({
  name: "manager, 1 core: 8 x (512 appends + sync()), awaited together",
  group: "durable: 8 syncs of 512 records in flight, per core",
  async fn() {
    const w = one.writer(0);
    const p: Promise<void>[] = [];
    for (let k = 0; k < 8; k++) {
      for (let i = 0; i < BATCH; i++) w.appendPut(keys[i], value);
      p.push(w.sync());
    }
    await Promise.all(p);
  },
});

Deno.bench({
  name: "manager, 2 cores: 8 x (512 appends on each + syncAll()) (8192 records)",
  group: "durable: 8 syncs of 512 records in flight, per core",
  async fn() {
    const p: Promise<void>[] = [];
    for (let k = 0; k < 8; k++) {
      for (let i = 0; i < BATCH; i++) {
        two.writer(0).appendPut(keys[i], value);
        two.writer(1).appendPut(keys[i], value);
      }
      p.push(two.syncAll());
    }
    await Promise.all(p);
  },
});

Deno.bench({
  name: "plain Deno: 64 records, each written and fdatasynced alone",
  group: "64 concurrent producers, each awaiting its own record",
  baseline: true,
  fn() {
    for (let i = 0; i < 64; i++) plainWrite(1);
  },
});

Deno.bench({
  name: "manager, 1 core: 64 producers, appendPut + waitDurable(seq)",
  group: "64 concurrent producers, each awaiting its own record",
  async fn() {
    const w = group.writer(0);
    await Promise.all(keys.slice(0, 64).map((k) => w.waitDurable(w.appendPut(k, value))));
  },
});

Deno.bench({
  name: "CoreLog engine (no Worker): 64 producers, appendPut + waitDurable(seq)",
  group: "64 concurrent producers, each awaiting its own record",
  async fn() {
    await Promise.all(keys.slice(0, 64).map((k) => engine.waitDurable(engine.appendPut(k, value))));
  },
});
