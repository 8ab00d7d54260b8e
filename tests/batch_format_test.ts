// The atomic batch record's bytes (docs/FORMAT.md, "Atomic batch", format version 3).
import { assertEquals } from "@std/assert";
import {
  checkRecord,
  decodeBatchRecord,
  normalizeBatch,
  R_CRC,
  RECORD_HEADER_BYTES,
  recordCrc,
  RecordType,
  saltState,
  writeBatchBody,
  writeRecordHeader,
} from "../src/format.ts";
import { batchBodyLength, batchRecordBytes } from "../src/batch_record.ts";
import type { PutOperation } from "../src/types.ts";

const SALT = 0x01020304;

/** The record of FORMAT.md's example: core 0, epoch 1, sequence 5, a put and a delete. */
function example(): Uint8Array {
  const ops = normalizeBatch([
    { type: "put", key: "k1", value: "v1" },
    { type: "delete", key: "k2" },
  ]);
  const len = RECORD_HEADER_BYTES + batchBodyLength(ops);
  const bytes = new Uint8Array(len);
  const view = new DataView(bytes.buffer);
  writeRecordHeader(view, 0, len, RecordType.atomicBatch, 0, 1, 5, 1_700_000_000_000_000, 0);
  writeBatchBody(ops, bytes, view, RECORD_HEADER_BYTES);
  view.setUint32(R_CRC, recordCrc(bytes, 0, len, saltState(SALT)), true);
  return bytes;
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("atomic batch record: the bytes of FORMAT.md's example", () => {
  const b = example();
  assertEquals(b.length, 38 + 4 + (5 + 6) + (5 + 2)); // 60
  assertEquals(
    batchRecordBytes([{ type: "put", key: "k1", value: "v1" }, { type: "delete", key: "k2" }]),
    60,
  );
  assertEquals(hex(b.subarray(32, 38)), "07 00 00 00 00 00"); // type 7, flags, core, padLength
  assertEquals(hex(b.subarray(16, 24)), "05 00 00 00 00 00 00 00"); // the first sequence
  assertEquals(
    hex(b.subarray(38)),
    "02 00 00 00 " + // count 2
      "01 06 00 00 00 02 00 6b 31 76 31 " + // put, 6 bytes: key length 2, "k1", "v1"
      "02 02 00 00 00 6b 32", // delete, 2 bytes: "k2"
  );
  assertEquals(
    new DataView(b.buffer).getUint32(0, true).toString(16),
    "9eccb3ea", /* CRC32C computed independently of src/ */
  );
});

Deno.test("atomic batch record: checked only in version 3 segments, malformed bodies are Corrupted", () => {
  const ctx = (version: number) => ({
    salt: saltState(SALT),
    coreId: 0,
    maxRecordBytes: 1 << 20,
    version,
  });
  const check = (b: Uint8Array, version = 3) =>
    checkRecord(b, new DataView(b.buffer), 0, b.length, ctx(version));
  assertEquals(check(example()), { status: "ok", length: 60 });
  // An older segment cannot hold one (a v2 reader would take it for damage).
  assertEquals(check(example(), 2), {
    status: "bad",
    code: "Corrupted",
    reason: "atomic batch in a version 2 segment",
  });
  const reseal = (mutate: (v: DataView) => void) => {
    const b = example();
    const v = new DataView(b.buffer);
    mutate(v);
    v.setUint32(R_CRC, recordCrc(b, 0, b.length, saltState(SALT)), true);
    const r = check(b);
    return r.status === "bad" ? r.reason : r.status;
  };
  assertEquals(reseal((v) => v.setUint32(38, 0, true)), "empty batch");
  assertEquals(reseal((v) => v.setUint32(38, 3, true)), "batch operation 2 runs past the body");
  assertEquals(reseal((v) => v.setUint32(38, 1, true)), "batch body length mismatch");
  assertEquals(
    reseal((v) => v.setUint8(42, RecordType.checkpoint)),
    "batch operation 0 has type 3, not put, delete or commit",
  );
  assertEquals(
    reseal((v) => v.setUint8(42, RecordType.atomicBatch)),
    "batch operation 0 has type 7, not put, delete or commit",
  );
  assertEquals(
    reseal((v) => v.setUint16(47, 9, true)),
    "batch operation 0: put key longer than its body",
  );
  assertEquals(reseal((v) => v.setUint32(43, 600, true)), "batch operation 0 runs past the body");
});

Deno.test("atomic batch record: decoded into its operations, in order", () => {
  const b = example();
  const ops = decodeBatchRecord(b, new DataView(b.buffer), 0);
  assertEquals(ops.map((o) => o.type), ["put", "delete"]);
  const put = ops[0] as PutOperation;
  assertEquals(new TextDecoder().decode(put.key), "k1");
  assertEquals(new TextDecoder().decode(put.value), "v1");
});

Deno.test("normalizeBatch copies keys and values: a caller's buffer changed later changes nothing", () => {
  const value = new Uint8Array([1, 2, 3]);
  const [op] = normalizeBatch([{ type: "put", key: "k", value }]);
  value[0] = 9;
  assertEquals([...(op as PutOperation).value], [1, 2, 3]);
});

Deno.test("atomic batch record: FORMAT.md's hex dump is what the encoder writes", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/FORMAT.md", import.meta.url));
  const at = doc.indexOf("Example (core 0, epoch 1, first sequence 5");
  const start = doc.indexOf("```\n", at) + 4;
  const block = doc.slice(start, doc.indexOf("\n```", start));
  const bytes = block.split("\n").flatMap((line) =>
    line.slice(6, 6 + 16 * 3).trim().split(/\s+/).map((h) => parseInt(h, 16))
  );
  assertEquals(bytes, [...example()]);
});
