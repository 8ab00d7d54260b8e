import { assertEquals, assertThrows } from "@std/assert";
import { crc32c } from "../src/crc32c.ts";
import { PerCoreWalError } from "../src/errors.ts";
import {
  bodyLength,
  checkRecord,
  decodeRecord,
  decodeSegmentHeader,
  encodeSegmentHeader,
  normalizeOperation,
  PUT_OVERHEAD_BYTES,
  R_CRC,
  R_LENGTH,
  R_PAD,
  RECORD_HEADER_BYTES,
  recordCrc,
  RecordType,
  saltState,
  writeBody,
  writeRecordHeader,
} from "../src/format.ts";
import type { WalOperation, WalOperationInput } from "../src/types.ts";
import { utf8 } from "./_helpers.ts";

const SALT = 0x1234abcd;
const ctx = { salt: saltState(SALT), coreId: 3, maxRecordBytes: 1 << 20 };

function encode(op: WalOperation, pad = 0, seq = 9, epoch = 2): Uint8Array {
  const len = RECORD_HEADER_BYTES + bodyLength(op) + pad;
  const b = new Uint8Array(len + 16);
  const v = new DataView(b.buffer);
  writeRecordHeader(v, 0, len, RecordType[op.type], 3, epoch, seq, 1_700_000_000_123_456, pad);
  writeBody(op, b, v, RECORD_HEADER_BYTES);
  v.setUint32(R_CRC, recordCrc(b, 0, len, ctx.salt), true);
  return b;
}

const ops: WalOperationInput[] = [
  { type: "put", key: "k", value: "value" },
  { type: "put", key: new Uint8Array(0), value: new Uint8Array(0) },
  { type: "delete", key: "gone" },
  { type: "checkpoint", id: Number.MAX_SAFE_INTEGER },
  { type: "commit", offsets: { kafka: 42, "é-source": 0 } },
  { type: "commit", offsets: new Map([["s", 7]]), watermark: -5 },
  { type: "commit", offsets: {} },
  { type: "epochBarrier", epoch: 12 },
];

Deno.test("every operation type round-trips through encode and decode", () => {
  for (const input of ops) {
    const op = normalizeOperation(input, 0);
    const b = encode(op);
    const v = new DataView(b.buffer);
    const c = checkRecord(b, v, 0, b.length, ctx);
    assertEquals(c, { status: "ok", length: RECORD_HEADER_BYTES + bodyLength(op) });
    const e = decodeRecord(b, v, 0);
    assertEquals(e.operation, op);
    assertEquals(e.coreId, 3);
    assertEquals(e.sequence, 9);
    assertEquals(e.epoch, 2);
    assertEquals(e.timestampNs, 1_700_000_000_123_456_000n);
  }
});

Deno.test("a put costs 40 bytes besides its key and value", () => {
  const op = normalizeOperation({
    type: "put",
    key: new Uint8Array(16),
    value: new Uint8Array(112),
  }, 0);
  assertEquals(RECORD_HEADER_BYTES + bodyLength(op), 128 + PUT_OVERHEAD_BYTES);
  assertEquals(PUT_OVERHEAD_BYTES, 40);
});

Deno.test("padding counts as part of the record and is covered by its checksum", () => {
  const op = normalizeOperation({ type: "put", key: "k", value: "v" }, 0);
  const b = encode(op, 100);
  const v = new DataView(b.buffer);
  const len = RECORD_HEADER_BYTES + bodyLength(op) + 100;
  assertEquals(checkRecord(b, v, 0, b.length, ctx), { status: "ok", length: len });
  assertEquals(decodeRecord(b, v, 0).operation, op);
  b[len - 1] = 1; // a non-zero padding byte fails the CRC
  assertEquals(checkRecord(b, v, 0, b.length, ctx).status, "bad");
});

Deno.test("zeros never decode as a record", () => {
  const b = new Uint8Array(4096);
  const v = new DataView(b.buffer);
  assertEquals(checkRecord(b, v, 0, b.length, ctx).status, "zero");
  v.setUint32(R_LENGTH, 64, true); // a length alone, CRC 0: not a record
  assertEquals(checkRecord(b, v, 0, b.length, ctx).status, "bad");
});

Deno.test("a flipped bit anywhere in a record fails its checksum or its structure", () => {
  const op = normalizeOperation({ type: "commit", offsets: { a: 1 }, watermark: 3 }, 0);
  const b = encode(op);
  const len = RECORD_HEADER_BYTES + bodyLength(op);
  for (let bit = 0; bit < len * 8; bit++) {
    const c = b.slice();
    c[bit >> 3] ^= 1 << (bit & 7);
    const r = checkRecord(c, new DataView(c.buffer), 0, c.length, ctx);
    if (r.status === "ok") throw new Error(`bit ${bit} flipped and the record still passed`);
  }
});

Deno.test("a record written with another segment's salt fails its checksum", () => {
  const b = encode(normalizeOperation({ type: "delete", key: "x" }, 0));
  const other = { ...ctx, salt: saltState(SALT + 1) };
  assertEquals(checkRecord(b, new DataView(b.buffer), 0, b.length, other), {
    status: "bad",
    code: "ChecksumMismatch",
    reason: "checksum mismatch",
  });
});

Deno.test("a record of another core, or above maxRecordBytes, is refused", () => {
  const b = encode(normalizeOperation({ type: "put", key: "k", value: new Uint8Array(500) }, 0));
  const v = new DataView(b.buffer);
  assertEquals(checkRecord(b, v, 0, b.length, { ...ctx, coreId: 4 }).status, "bad");
  assertEquals(checkRecord(b, v, 0, b.length, { ...ctx, maxRecordBytes: 200 }).status, "bad");
});

Deno.test("a record cut short reports incomplete with its length", () => {
  const b = encode(normalizeOperation({ type: "put", key: "k", value: "vvvv" }, 0));
  const len = new DataView(b.buffer).getUint32(R_LENGTH, true);
  assertEquals(checkRecord(b, new DataView(b.buffer), 0, len - 1, ctx), {
    status: "incomplete",
    length: len,
  });
});

Deno.test("the padding length field cannot exceed the record", () => {
  const b = encode(normalizeOperation({ type: "put", key: "k", value: "v" }, 0));
  const v = new DataView(b.buffer);
  const len = v.getUint32(R_LENGTH, true);
  v.setUint16(R_PAD, len, true);
  v.setUint32(R_CRC, recordCrc(b, 0, len, ctx.salt), true);
  assertEquals(checkRecord(b, v, 0, b.length, ctx).status, "bad");
});

Deno.test("segment header round-trips and rejects damage, other versions and other files", () => {
  const h = {
    coreId: 5,
    segmentIndex: 17,
    firstSequence: 1000,
    epoch: 4,
    createdAtNs: 1_700_000_000_000_000_000n,
    salt: SALT,
  };
  const b = encodeSegmentHeader(h);
  assertEquals(decodeSegmentHeader(b), { ...h, version: 3, dataOffset: 4096 });
  const flipped = b.slice();
  flipped[20] ^= 4;
  const e = assertThrows(() => decodeSegmentHeader(flipped, "wal-5-000017.log"), PerCoreWalError);
  assertEquals(e.code, "ChecksumMismatch");
  assertEquals(e.message, 'Cannot open segment "wal-5-000017.log": header checksum mismatch');
  const v2 = b.slice();
  const dv = new DataView(v2.buffer);
  dv.setUint16(8, 4, true);
  dv.setUint32(60, crc32c(v2, 0, 60), true);
  const e2 = assertThrows(() => decodeSegmentHeader(v2), PerCoreWalError);
  assertEquals([e2.code, e2.message], [
    "Unsupported",
    'Cannot open segment "segment": format version 4 (this module reads 1 to 3)',
  ]);
  // Version 2 and version 1 segments are still read.
  dv.setUint16(8, 2, true);
  dv.setUint32(60, crc32c(v2, 0, 60), true);
  assertEquals(decodeSegmentHeader(v2).version, 2);
  dv.setUint16(8, 1, true);
  dv.setUint32(60, crc32c(v2, 0, 60), true);
  assertEquals(decodeSegmentHeader(v2).version, 1);
  assertEquals(
    assertThrows(
      () => decodeSegmentHeader(utf8("not a segment at all, really not one ....................")),
      PerCoreWalError,
    ).code,
    "Corrupted",
  );
});

Deno.test("normalizeOperation() rejects wrong argument types with TypeError and sizes with RangeError", () => {
  assertThrows(
    () => normalizeOperation({ type: "put", key: 5 as unknown as string, value: "v" }, 0),
    TypeError,
  );
  assertThrows(
    () => normalizeOperation({ type: "put", key: "k", value: null as unknown as string }, 0),
    TypeError,
  );
  assertThrows(
    () => normalizeOperation({ type: "put", key: new Uint8Array(65536), value: "v" }, 0),
    RangeError,
  );
  assertThrows(() => normalizeOperation({ type: "checkpoint", id: -1 }, 0), RangeError);
  assertThrows(() => normalizeOperation({ type: "checkpoint", id: 1.5 }, 0), RangeError);
  assertThrows(
    () => normalizeOperation({ type: "commit", offsets: { a: 2 ** 64 } }, 0),
    RangeError,
  );
  assertThrows(
    () => normalizeOperation({ type: "nope" } as unknown as WalOperationInput, 0),
    TypeError,
  );
  assertThrows(() => normalizeOperation(null as unknown as WalOperationInput, 0), TypeError);
});
