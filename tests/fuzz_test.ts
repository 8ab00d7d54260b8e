// Fuzzing the decoder and the readers with random and mutated segments, seeded: only
// PerCoreWalError may come out, every entry returned must be one that was written (same bytes),
// and every loop ends. FUZZ_SEED=s replays a run, FUZZ_CASES=n extends it (default 4000 cases:
// every case through the pure decoder, every 4th through the file reader, every 8th also through
// scanSegment, every 40th through read-only recovery in one of its four modes).
import { assert, assertEquals } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import {
  checkRecord,
  decodeRecord,
  decodeSegmentHeader,
  R_CRC,
  R_LENGTH,
  R_TYPE,
  recordCrc,
  RecordType,
  saltState,
  SEGMENT_DATA_OFFSET,
} from "../src/format.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { scanSegment } from "../src/segment_probes.ts";
import { recoverPerCore } from "../src/recovery.ts";
import type { RecoveryMode } from "../src/recovery_types.ts";
import type { PerCoreWalEntry } from "../src/types.ts";
import { reconcileWalMeta } from "../src/wal_meta.ts";
import { readCore, rng, tempDir } from "./_helpers.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261124);
const CASES = Number(Deno.env.get("FUZZ_CASES") ?? 4000);
const MAX_RECORD = 4096;
const OPTIONS = {
  segmentSizeBytes: 32 * 1024,
  backend: "sync",
  maxRecordBytes: MAX_RECORD,
} as const;

interface Base {
  /** Segment 0's bytes, cut after its last record plus some zeros. */
  bytes: Uint8Array;
  /** The salt of segment 0. */
  salt: number;
  /** Where each record starts. */
  offsets: number[];
  /** What was written, by sequence. */
  written: Map<number, PerCoreWalEntry>;
  /** Every value written under each key (hex of the key). */
  values: Map<string, Uint8Array[]>;
  /** The WAL directory it came from (for wal.json). */
  walDir: string;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Writes a WAL with every record type through the real engine (sync backend). */
async function makeBase(dir: string): Promise<Base> {
  const config = new PerCoreWalConfig(`${dir}/wal`, 1, OPTIONS);
  const log = await CoreLog.open(config, 0);
  const r = rng(99);
  const values = new Map<string, Uint8Array[]>();
  for (let i = 0; i < 40; i++) {
    const x = r();
    if (x < 0.6) {
      const key = new Uint8Array(1 + Math.floor(r() * 20)).map(() => Math.floor(r() * 256));
      const value = new Uint8Array(Math.floor(r() * 120)).map(() => Math.floor(r() * 256));
      log.appendPut(key, value);
      values.set(hex(key), [...(values.get(hex(key)) ?? []), value]);
    } else if (x < 0.7) log.appendDelete(`gone-${i}`);
    else if (x < 0.8) {
      log.appendCommit({ [`src-${i % 3}`]: i }, i % 2 ? i : undefined);
    } else if (x < 0.9) log.appendEpochBarrier();
    else log.appendCheckpoint(i);
    if (i % 7 === 6) await log.sync();
  }
  await log.sync();
  await log.close();
  const entries = await readCore(config, 0);
  const written = new Map(entries.map((e) => [e.sequence, e]));
  const file = Deno.readFileSync(config.segmentPath(0, 0));
  const header = decodeSegmentHeader(file, "base");
  const view = new DataView(file.buffer);
  const offsets: number[] = [];
  let pos = SEGMENT_DATA_OFFSET;
  for (let i = 0; i < entries.length; i++) {
    offsets.push(pos);
    pos += view.getUint32(pos + R_LENGTH, true);
  }
  return {
    bytes: file.slice(0, pos + 512),
    salt: header.salt,
    offsets,
    written,
    values,
    walDir: config.baseDir,
  };
}

type Mutation =
  | "random"
  | "randomBody"
  | "bitFlips"
  | "truncate"
  | "zeroRange"
  | "duplicateRange"
  | "lengthField"
  | "headerField"
  | "recordFieldCrcFixed";

const MUTATIONS: Mutation[] = [
  "random",
  "randomBody",
  "bitFlips",
  "truncate",
  "zeroRange",
  "duplicateRange",
  "lengthField",
  "headerField",
  "recordFieldCrcFixed",
];

/** A mutated copy of the base segment. `crcFixed`: checksums recomputed after the change. */
function mutate(
  base: Base,
  r: () => number,
): { bytes: Uint8Array; kind: Mutation; crcFixed: boolean } {
  const int = (n: number) => Math.floor(r() * n);
  const kind = MUTATIONS[int(MUTATIONS.length)];
  let b = base.bytes.slice();
  const pickRecord = () => base.offsets[int(base.offsets.length)];
  switch (kind) {
    case "random":
      b = new Uint8Array(int(3 * 4096)).map(() => int(256));
      break;
    case "randomBody":
      for (let i = SEGMENT_DATA_OFFSET + int(b.length - SEGMENT_DATA_OFFSET); i < b.length; i++) {
        b[i] = int(256);
      }
      break;
    case "bitFlips":
      for (let n = 1 + int(8); n > 0; n--) {
        // Mostly in the records; sometimes in the header.
        const at = r() < 0.85 ? SEGMENT_DATA_OFFSET + int(b.length - SEGMENT_DATA_OFFSET) : int(64);
        b[at] ^= 1 << int(8);
      }
      break;
    case "truncate":
      b = b.slice(0, int(b.length + 1));
      break;
    case "zeroRange": {
      const at = r() < 0.5 ? pickRecord() + int(40) : int(b.length);
      b.fill(0, at, at + 1 + int(300));
      break;
    }
    case "duplicateRange": {
      const from = r() < 0.5 ? pickRecord() : int(b.length);
      const len = 1 + int(400);
      const to = SEGMENT_DATA_OFFSET + int(b.length - SEGMENT_DATA_OFFSET);
      b.set(b.slice(from, from + len).subarray(0, Math.max(0, b.length - to)), to);
      break;
    }
    case "lengthField": {
      const at = pickRecord();
      const v = new DataView(b.buffer);
      const choices = [
        0xffffffff,
        0x80000000,
        0x7fffffff,
        0,
        1,
        7,
        37,
        38,
        MAX_RECORD + 0x10000,
        int(2 ** 32),
      ];
      v.setUint32(at + R_LENGTH, choices[int(choices.length)], true);
      const fixed = r() < 0.5;
      if (fixed) _fixRecordCrc(b, at, base.salt);
      return { bytes: b, kind, crcFixed: fixed };
    }
    case "headerField": {
      const v = new DataView(b.buffer);
      const field = [8, 10, 12, 16, 24, 32, 40, 48, 52, 56][int(10)];
      if (field === 8 || field === 10) v.setUint16(field, int(2 ** 16), true);
      else if ([16, 24, 32, 40].includes(field)) {
        v.setBigUint64(field, BigInt(int(2 ** 32)) << BigInt(int(33)), true);
      } else v.setUint32(field, int(2 ** 32), true);
      // With the header CRC recomputed, the header's own checks are what stands.
      if (r() < 0.7) v.setUint32(60, _crc(b, 0, 60), true);
      // The header is fixed, but records keep the old salt and core: not "written" ones.
      return { bytes: b, kind, crcFixed: true };
    }
    case "recordFieldCrcFixed": {
      const at = pickRecord();
      const len = new DataView(b.buffer).getUint32(at + R_LENGTH, true);
      b[at + 8 + int(len - 8)] = int(256);
      _fixRecordCrc(b, at, base.salt);
      return { bytes: b, kind, crcFixed: true };
    }
  }
  return { bytes: b, kind, crcFixed: false };
}

function _crc(b: Uint8Array, from: number, to: number): number {
  let c = 0xffffffff;
  for (let i = from; i < to; i++) {
    c ^= b[i];
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return ~c >>> 0;
}

function _fixRecordCrc(b: Uint8Array, at: number, salt: number): void {
  const v = new DataView(b.buffer);
  const len = v.getUint32(at + R_LENGTH, true);
  if (len < 8 || at + len > b.length) return;
  v.setUint32(at + R_CRC, recordCrc(b, at, len, saltState(salt)), true);
}

/** Checks an entry against what was written; with `crcFixed`, only that it is well-formed. */
function checkEntry(base: Base, e: PerCoreWalEntry, crcFixed: boolean, where: string): void {
  if (crcFixed) {
    assert(typeof e.sequence === "number" && typeof e.operation.type === "string", where);
    return;
  }
  const w = base.written.get(e.sequence);
  assert(w !== undefined, `${where}: sequence ${e.sequence} was never written`);
  assertEquals(e, w, `${where}: entry ${e.sequence} differs from the written one`);
}

function onlyWalErrors(e: unknown, where: string): void {
  if (!(e instanceof PerCoreWalError)) {
    throw new Error(
      `${where}: threw ${e instanceof Error ? e.name : typeof e}, not PerCoreWalError: ${e}`,
      {
        cause: e,
      },
    );
  }
}

/** The pure decoder over the bytes: header, then records until one is not ok. */
function decodeAll(base: Base, bytes: Uint8Array, crcFixed: boolean, where: string): number {
  let h;
  try {
    h = decodeSegmentHeader(bytes, "fuzz");
  } catch (e) {
    onlyWalErrors(e, where);
    return 0;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const ctx = {
    salt: saltState(h.salt),
    coreId: h.coreId,
    maxRecordBytes: MAX_RECORD,
    version: h.version,
  };
  let pos = SEGMENT_DATA_OFFSET;
  let steps = 0;
  let n = 0;
  while (pos < bytes.length) {
    assert(steps++ <= bytes.length / 38, `${where}: the decoder does not advance`);
    const c = checkRecord(bytes, view, pos, bytes.length, ctx);
    if (c.status !== "ok") break;
    // A batch marker (format v2) opens each batch; it is no entry.
    if (bytes[pos + R_TYPE] !== RecordType.batch) {
      checkEntry(base, decodeRecord(bytes, view, pos), crcFixed || h.salt !== base.salt, where);
      n++;
    }
    pos += c.length;
  }
  return n;
}

/** The file reader over a file holding the bytes. */
async function readAll(
  base: Base,
  path: string,
  crcFixed: boolean,
  last: boolean,
  where: string,
  scan = true,
) {
  let n = 0;
  try {
    await using reader = await PerCoreWalReader.open(path, {
      maxRecordBytes: MAX_RECORD,
      isLastSegment: last,
    });
    let prev: number | undefined;
    while (true) {
      const r = await reader.readNext();
      if (r.kind !== "entry") break;
      assert(n++ <= base.bytes.length / 38, `${where}: the reader does not end`);
      if (prev !== undefined) assertEquals(r.entry.sequence, prev + 1, `${where}: order`);
      prev = r.entry.sequence;
      checkEntry(base, r.entry, crcFixed, where);
    }
  } catch (e) {
    onlyWalErrors(e, where);
  }
  if (!scan) return n;
  try {
    await scanSegment(path, { maxRecordBytes: MAX_RECORD, isLastSegment: last });
  } catch (e) {
    onlyWalErrors(e, `${where} (scanSegment)`);
  }
  return n;
}

Deno.test("fuzz: mutated and random segments through the decoder, the reader and recovery", async () => {
  await using dir = await tempDir();
  const base = await makeBase(dir.path);
  // A WAL directory holding one segment file, rewritten each case.
  const fz = `${dir.path}/fz`;
  Deno.mkdirSync(fz);
  reconcileWalMeta(new PerCoreWalConfig(fz, 1, OPTIONS)); // writes wal.json
  const path = `${fz}/wal-0-000000.log`;
  const counts: Record<string, number> = {};
  const modes: RecoveryMode[] = ["tolerateTornTail", "strict", "pointInTime", "salvage"];
  let entriesSeen = 0;
  for (let i = 0; i < CASES; i++) {
    const r = rng(SEED + i * 7919);
    const { bytes, kind, crcFixed } = mutate(base, r);
    const where = `fuzz case ${i} (${kind}), replay: FUZZ_SEED=${SEED} FUZZ_CASES=${i + 1}`;
    counts[kind] = (counts[kind] ?? 0) + 1;
    entriesSeen += decodeAll(base, bytes, crcFixed, where);
    if (i % 4 !== 0) continue; // the file readers cost ~100 times the pure decoder
    Deno.writeFileSync(path, bytes);
    entriesSeen += await readAll(base, path, crcFixed, r() < 0.7, where, i % 8 === 0);
    if (i % 40 === 0) {
      // Recovery, read-only (the same file serves the next cases), in every mode.
      const mode = modes[(i / 40) % modes.length];
      try {
        using rec = await recoverPerCore(fz, { mode, readOnly: true, checkpointDir: false });
        for (const [k, v] of rec.state) {
          if (crcFixed) continue;
          const vs = base.values.get(hex(k));
          assert(vs?.some((x) => hex(x) === hex(v)), `${where}: recovered a value never written`);
        }
      } catch (e) {
        onlyWalErrors(e, `${where} (recoverPerCore ${mode})`);
      }
    }
  }
  // Every kind of mutation ran, and intact records were read back through the mutations.
  for (const m of MUTATIONS) assert((counts[m] ?? 0) > 0, `mutation ${m} ran`);
  assert(entriesSeen > CASES, `entries were returned (${entriesSeen})`);
});

Deno.test("fuzz: the unmutated base segment reads back whole (the fuzz oracle is sound)", async () => {
  await using dir = await tempDir();
  const base = await makeBase(dir.path);
  assertEquals(decodeAll(base, base.bytes, false, "base"), base.written.size);
  const path = `${dir.path}/seg.log`;
  Deno.writeFileSync(path, base.bytes);
  assertEquals(await readAll(base, path, false, true, "base"), base.written.size);
  assert([...base.written.values()].some((e) => e.operation.type === "commit"));
});
