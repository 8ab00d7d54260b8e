import { assertEquals, assertThrows } from "@std/assert";
import { crc32c, crc32cAccelerated, crc32cUpdate, crc32cUpdateJs } from "../src/crc32c.ts";
import { enableNativeCrc32c } from "../src/io/checksum.ts";
import { rng } from "./_helpers.ts";

function bitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test('crc32c() of "123456789" is the Castagnoli check value 0xE3069283', () => {
  assertEquals(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
});

Deno.test("crc32c() of an empty input is 0, so zero fields must never be accepted as a checksum", () => {
  assertEquals(crc32c(new Uint8Array(0)), 0);
});

Deno.test("crc32c() matches a bit-at-a-time reference on random inputs of every length to 300", () => {
  const r = rng(7);
  for (let n = 0; n <= 300; n++) {
    const b = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
    assertEquals(crc32c(b), bitwise(b), `length ${n}`);
  }
});

Deno.test("crc32cUpdate() continued over pieces equals one pass over the whole", () => {
  const b = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
  for (const cut of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    const s = crc32cUpdate(crc32cUpdate(0xffffffff, b, 0, cut), b, cut, b.length);
    assertEquals(~s >>> 0, crc32c(b), `cut ${cut}`);
  }
});

Deno.test("crc32c() is the same at every alignment of its input and on shared memory", () => {
  const r = rng(11);
  const data = Uint8Array.from({ length: 600 }, () => Math.floor(r() * 256));
  for (const shared of [false, true]) {
    const buffer = shared ? new SharedArrayBuffer(700) : new ArrayBuffer(700);
    for (let base = 0; base < 8; base++) {
      // A view at byte offset `base`, and ranges starting at every offset mod 4.
      const view = new Uint8Array(buffer, base, 600);
      view.set(data);
      for (let start = 0; start < 9; start++) {
        for (const len of [0, 15, 31, 32, 33, 64, 100, 164, 591 - start]) {
          const want = bitwise(data.subarray(start, start + len));
          assertEquals(crc32c(view, start, start + len), want, `${shared} ${base} ${start} ${len}`);
        }
      }
    }
  }
});

Deno.test("ISA-L's CRC32C, when installed, equals the TypeScript one at every length and offset", () => {
  const name = enableNativeCrc32c();
  if (name !== "isa-l") {
    // .ci/run installs libisal2 and sets REQUIRE_NATIVE_CRC=1: there a missing library fails.
    if (Deno.env.get("REQUIRE_NATIVE_CRC") === "1") {
      throw new Error("REQUIRE_NATIVE_CRC=1 but ISA-L (libisal.so.2) could not be loaded");
    }
    console.warn("ISA-L is not installed: only the TypeScript CRC32C was checked");
    return;
  }
  assertEquals(crc32cAccelerated(), true);
  {
    const r = rng(13);
    const data = Uint8Array.from({ length: 4200 }, () => Math.floor(r() * 256));
    const shared = new Uint8Array(new SharedArrayBuffer(4300), 3, 4200);
    shared.set(data);
    for (const view of [data, shared]) {
      for (let start = 0; start < 9; start++) {
        for (let len = 0; len <= 300; len += start + 1) {
          const s = crc32cUpdate(0x1234567, view, start, start + len);
          assertEquals(s >>> 0, crc32cUpdateJs(0x1234567, view, start, start + len) >>> 0);
        }
        const s = crc32cUpdate(0xffffffff, view, start, 4200);
        assertEquals(~s >>> 0, bitwise(data.subarray(start)));
      }
    }
    assertEquals(crc32c(data), bitwise(data));
    // Calls alternating between buffers (the native path looks each buffer's address up once, so
    // a stale one would read another buffer's bytes), and a resizable buffer after it grew.
    const other = Uint8Array.from(data).reverse();
    const resizable = new ArrayBuffer(256, { maxByteLength: 8192 });
    for (let i = 0; i < 50; i++) {
      const [view, plain] = i % 3 === 0
        ? [data, data]
        : i % 3 === 1
        ? [other, other]
        : [new Uint8Array(resizable, 16), data.subarray(0, resizable.byteLength - 16)];
      if (i % 3 === 2) view.set(plain);
      assertEquals(crc32c(view, i, i + 200), bitwise(plain.subarray(i, i + 200)), `call ${i}`);
      if (i === 26) resizable.resize(4096);
    }
  }
});

Deno.test("ISA-L's CRC32C by address never reads outside the view: past its end, or through a detached buffer, is a RangeError", () => {
  if (enableNativeCrc32c() !== "isa-l") {
    if (Deno.env.get("REQUIRE_NATIVE_CRC") === "1") {
      throw new Error("REQUIRE_NATIVE_CRC=1 but ISA-L (libisal.so.2) could not be loaded");
    }
    return;
  }
  // Past the end of its buffer: native memory that is not this buffer's.
  const small = new Uint8Array(128);
  assertThrows(() => crc32c(small, 0, 1 << 20), RangeError);
  assertThrows(() => crc32c(small.subarray(64), 0, 128), RangeError);
  assertThrows(() => crc32cUpdate(0xffffffff, small, -64, 64), RangeError);
  // A buffer given away (transfer, postMessage): its address was looked up before, and its
  // memory now belongs to another buffer, or to nobody.
  const buffer = new ArrayBuffer(1 << 16);
  const view = new Uint8Array(buffer);
  view.fill(3);
  crc32c(view);
  const moved = buffer.transfer();
  assertEquals(view.length, 0);
  assertThrows(() => crc32c(view, 0, 1 << 16), RangeError);
  // A resizable buffer shrunk under a fixed view: the view is out of bounds (length 0).
  const rab = new ArrayBuffer(4096, { maxByteLength: 8192 });
  const fixed = new Uint8Array(rab, 0, 4096);
  crc32c(fixed);
  rab.resize(1024);
  assertThrows(() => crc32c(fixed, 0, 4096), RangeError);
  assertEquals(crc32c(new Uint8Array(moved)), bitwise(new Uint8Array(1 << 16).fill(3)));
});
