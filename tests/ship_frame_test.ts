// The shipped message framing (docs/SHIPPING.md section 1): round trip, refusals, the doc's example.
import { assertEquals, assertThrows } from "@std/assert";
import { decodeFrame, encodeFrame, FRAME_HEADER_BYTES } from "../src/ship/frame.ts";
import { PerCoreWalError } from "../src/errors.ts";
import type { PerCoreWalEntry } from "../src/types.ts";
import { utf8 } from "./_helpers.ts";

function sample(): PerCoreWalEntry[] {
  const ts = 1_700_000_000_000_000_000n;
  return [
    {
      coreId: 3,
      epoch: 1,
      sequence: 10,
      timestampNs: ts,
      operation: { type: "put", key: utf8("a"), value: utf8("1") },
    },
    {
      coreId: 3,
      epoch: 1,
      sequence: 11,
      timestampNs: ts + 1n,
      operation: { type: "delete", key: utf8("b") },
    },
    {
      coreId: 3,
      epoch: 1,
      sequence: 12,
      timestampNs: ts + 2n,
      operation: { type: "put", key: utf8("c"), value: utf8("") },
      batchLast: 14,
    },
    {
      coreId: 3,
      epoch: 1,
      sequence: 13,
      timestampNs: ts + 2n,
      operation: { type: "delete", key: utf8("a") },
      batchLast: 14,
    },
    {
      coreId: 3,
      epoch: 1,
      sequence: 14,
      timestampNs: ts + 2n,
      operation: { type: "commit", offsets: new Map([["src", 7]]), watermark: -3 },
      batchLast: 14,
    },
    {
      coreId: 3,
      epoch: 1,
      sequence: 15,
      timestampNs: ts + 3n,
      operation: { type: "checkpoint", id: 4 },
    },
    {
      coreId: 3,
      epoch: 2,
      sequence: 16,
      timestampNs: ts + 4n,
      operation: { type: "epochBarrier", epoch: 1 },
    },
    {
      coreId: 3,
      epoch: 2,
      sequence: 17,
      timestampNs: ts + 5n,
      operation: { type: "put", key: utf8("d"), value: utf8("x") },
      batchLast: 17,
    },
  ];
}

Deno.test("ship frame: decode(encode(entries)) gives the entries back, batch membership included", () => {
  const entries = sample();
  const frame = decodeFrame(encodeFrame(entries));
  assertEquals(frame.coreId, 3);
  assertEquals(frame.firstSequence, 10);
  assertEquals(frame.lastSequence, 17);
  assertEquals(frame.entries, entries);
});

Deno.test("ship frame: every flipped bit is refused (checksum), a truncation too", () => {
  const bytes = encodeFrame(sample());
  for (let i = 0; i < bytes.length; i++) {
    const bad = bytes.slice();
    bad[i] ^= 0x10;
    const e = assertThrows(() => decodeFrame(bad), PerCoreWalError);
    if (i >= 4) assertEquals(e.code === "ChecksumMismatch" || e.code === "Corrupted", true);
  }
  assertThrows(() => decodeFrame(bytes.subarray(0, bytes.length - 1)), PerCoreWalError);
  assertThrows(() => decodeFrame(bytes.subarray(0, FRAME_HEADER_BYTES)), PerCoreWalError);
});

Deno.test("ship frame: a split batch, a gap or two cores are refused by the encoder", () => {
  const e = sample();
  assertThrows(() => encodeFrame(e.slice(0, 3)), RangeError, "split the atomic batch");
  assertThrows(() => encodeFrame([e[0], e[2]]), RangeError, "expected");
  assertThrows(() => encodeFrame([e[0], { ...e[1], coreId: 4 }]), RangeError, "one core");
  assertThrows(() => encodeFrame([]), RangeError);
});

Deno.test("ship frame: SHIPPING.md's hex example is what the encoder writes", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/SHIPPING.md", import.meta.url));
  const at = doc.indexOf("Example (core 1, one put");
  const start = doc.indexOf("```\n", at) + 4;
  const block = doc.slice(start, doc.indexOf("\n```", start));
  const bytes = block.split("\n").flatMap((line) =>
    line.slice(6, 6 + 16 * 3).trim().split(/\s+/).map((h) => parseInt(h, 16))
  );
  const frame = encodeFrame([{
    coreId: 1,
    epoch: 2,
    sequence: 5,
    timestampNs: 1000n,
    operation: { type: "put", key: utf8("k"), value: utf8("v") },
  }]);
  assertEquals(bytes, [...frame]);
  assertEquals(decodeFrame(new Uint8Array(bytes)).entries[0].sequence, 5);
});
