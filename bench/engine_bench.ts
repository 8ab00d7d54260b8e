// deno task bench: the segment engine against plain Deno at the same batch size, and the
// micro-benchmarks of the format. 128-byte records (16-byte key, 112-byte value).
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { crc32c, crc32cUpdateJs } from "../src/crc32c.ts";
import {
  checkRecord,
  decodeRecord,
  PUT_OVERHEAD_BYTES,
  R_CRC,
  RECORD_HEADER_BYTES,
  recordCrc,
  RecordType,
  saltState,
  writeRecordHeader,
} from "../src/format.ts";
import { BATCH, keys, PlainLog, value } from "./_plain.ts";
import { Ring } from "../src/io/ring.ts";
import { UringBackend } from "../src/io/uring.ts";
import { Op } from "../ffi/layout.ts";

const KEY = 16;
const REC = PUT_OVERHEAD_BYTES + KEY + 112;
const salt = saltState(0x9e3779b9);
const dir = Deno.makeTempDirSync({ dir: Deno.env.get("BENCH_DIR"), prefix: "percore-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

// Plain Deno, as a competent user writes it: append to a file, fdatasync per batch.
const plain = new PlainLog(`${dir}/plain.log`);

async function open(name: string, backend: "io_uring" | "sync"): Promise<CoreLog> {
  return await CoreLog.open(new PerCoreWalConfig(`${dir}/${name}`, 1, { backend }), 0);
}
const uring = await open("uring", "io_uring");
const uringPipe = await open("uring-pipe", "io_uring");
const syncLog = await open("sync", "sync");
const syncPipe = await open("sync-pipe", "sync");
// Let the background zero-fill of each log's next segment finish before measuring.
await new Promise((r) => setTimeout(r, 3000));

function append512(log: CoreLog): void {
  for (let i = 0; i < BATCH; i++) log.appendPut(keys[i], value);
}

Deno.bench({
  name: "Deno.FsFile writeSync + syncDataSync (append file)",
  group: "durable batch of 512 records, awaited",
  baseline: true,
  fn() {
    plain.write(BATCH);
  },
});

Deno.bench({
  name: "CoreLog io_uring: 512 appends + await sync()",
  group: "durable batch of 512 records, awaited",
  async fn() {
    append512(uring);
    await uring.sync();
  },
});

Deno.bench({
  name: "CoreLog sync backend: 512 appends + await sync()",
  group: "durable batch of 512 records, awaited",
  async fn() {
    append512(syncLog);
    await syncLog.sync();
  },
});

// Eight batches per iteration; the engine keeps up to eight sync() in flight, as W1 does.
Deno.bench({
  name: "Deno.FsFile writeSync + syncDataSync x8 (append file)",
  group: "8 durable batches of 512 records, pipelined",
  baseline: true,
  fn() {
    for (let b = 0; b < 8; b++) plain.write(BATCH);
  },
});

async function pipelined(log: CoreLog): Promise<void> {
  const pending: Promise<void>[] = [];
  for (let b = 0; b < 8; b++) {
    append512(log);
    pending.push(log.sync());
  }
  await Promise.all(pending);
}

Deno.bench({
  name: "CoreLog io_uring: 8 x (512 appends + sync()), awaited together",
  group: "8 durable batches of 512 records, pipelined",
  async fn() {
    await pipelined(uringPipe);
  },
});

Deno.bench({
  name: "CoreLog sync backend: 8 x (512 appends + sync()), awaited together",
  group: "8 durable batches of 512 records, pipelined",
  async fn() {
    await pipelined(syncPipe);
  },
});

// Micro-benchmarks of the format.
const rec = new Uint8Array(REC);
const recView = new DataView(rec.buffer);
writeRecordHeader(recView, 0, REC, RecordType.put, 0, 0, 1, 1, 0);
recView.setUint16(RECORD_HEADER_BYTES, KEY, true);
rec.set(keys[0], PUT_OVERHEAD_BYTES);
recView.setUint32(R_CRC, recordCrc(rec, 0, REC, salt), true);
const ctx = { salt, coreId: 0, maxRecordBytes: 1 << 24 };

Deno.bench({
  name: "crc32c of 128 bytes",
  group: "format (one 168-byte put record)",
  baseline: true,
  fn: () => void crc32c(rec, 0, 128),
});

// CRC32C where it is installed (ISA-L: CoreLog.open above installed it if it loads) and in
// TypeScript, on one record's bytes after the CRC field.
const rec4k = new Uint8Array(4096 + 40).fill(0x5a);
for (const [n, bytes] of [[164, rec], [4132, rec4k]] as const) {
  Deno.bench({
    name: `crc32c of ${n} bytes, as installed`,
    group: `crc32c of ${n} bytes`,
    baseline: true,
    fn: () => void crc32c(bytes, 4, 4 + n),
  });
  Deno.bench({
    name: `crc32c of ${n} bytes, TypeScript`,
    group: `crc32c of ${n} bytes`,
    fn: () => void crc32cUpdateJs(0xffffffff, bytes, 4, 4 + n),
  });
}
Deno.bench({
  name: "encode a put (header + copy + CRC)",
  group: "format (one 168-byte put record)",
  fn: () => void frameOne(),
});
Deno.bench({
  name: "check + decode a put",
  group: "format (one 168-byte put record)",
  fn: () =>
    void (checkRecord(rec, recView, 0, REC, ctx).status === "ok" && decodeRecord(rec, recView, 0)),
});

const scratch = new Uint8Array(REC);
const scratchView = new DataView(scratch.buffer);
function frameOne(): void {
  writeRecordHeader(scratchView, 0, REC, RecordType.put, 0, 0, 1, 1, 0);
  scratchView.setUint16(RECORD_HEADER_BYTES, KEY, true);
  scratch.set(keys[1], PUT_OVERHEAD_BYTES);
  scratch.set(value, PUT_OVERHEAD_BYTES + KEY);
  scratchView.setUint32(R_CRC, recordCrc(scratch, 0, REC, salt), true);
}

// Micro-benchmarks of the ring: one round trip through io_uring, next to a plain write.
const ring = Ring.create(8);
const uringIo = new UringBackend({ ringEntries: 64 });
const ringFile = uringIo.openFile(`${dir}/ring.dat`, {
  createNew: true,
  direct: false,
  dsync: false,
  mode: 0o600,
});
const ringBuf = uringIo.allocBuffer(4096);
const plainRingFile = Deno.openSync(`${dir}/ring-plain.dat`, { create: true, write: true });
globalThis.addEventListener("unload", () => {
  ring.close();
  plainRingFile.close();
  uringIo.closeFile(ringFile);
  void uringIo.close();
});

Deno.bench({
  name: "Deno.FsFile writeSync of 4 KiB at offset 0 (no sync)",
  group: "ring submit",
  baseline: true,
  fn() {
    plainRingFile.seekSync(0, Deno.SeekMode.Start);
    plainRingFile.writeSync(ringBuf);
  },
});

Deno.bench({
  name: "io_uring NOP: prep + submit_and_wait + reap",
  group: "ring submit",
  fn() {
    ring.prep(Op.NOP, 0, -1, 0, 0n, 0, 0, 1);
    ring.waitBlocking();
    ring.reap(() => {});
  },
});

Deno.bench({
  name: "UringBackend.writeParts of 4 KiB at offset 0 (no sync), awaited",
  group: "ring submit",
  async fn() {
    await uringIo.writeParts(ringFile, [{ data: ringBuf, offset: 0 }], false);
  },
});
