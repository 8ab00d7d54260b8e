import { assert, assertEquals } from "@std/assert";
import { IoUring, Op } from "../ffi/layout.ts";
import { Ring } from "../src/io/ring.ts";
import { ignoreWithoutUring } from "./_helpers.ts";

Deno.test({
  name: "struct io_uring offsets in ffi/layout.ts match what io_uring_queue_init_params fills in",
  ignore: ignoreWithoutUring,
  fn() {
    const ring = Ring.create(64);
    try {
      const s = new DataView(ring.mem.bytes.buffer, 0, IoUring.size);
      const deref = (ptrOffset: number) =>
        new Deno.UnsafePointerView(Deno.UnsafePointer.create(s.getBigUint64(ptrOffset, true))!)
          .getUint32();
      assertEquals(ring.structU32(IoUring.sq.ringEntries), 64);
      assertEquals(ring.structU32(IoUring.sq.ringMask), 63);
      assertEquals(deref(IoUring.sq.kringEntries), 64);
      assertEquals(deref(IoUring.sq.kringMask), 63);
      const cqEntries = ring.structU32(IoUring.cq.ringEntries);
      assertEquals(deref(IoUring.cq.kringEntries), cqEntries);
      assertEquals(ring.structU32(IoUring.cq.ringMask), cqEntries - 1);
      assert(cqEntries >= 64, `cq entries ${cqEntries}`);
      assert(s.getInt32(IoUring.ringFd, true) > 2, "ring fd");
      assert(s.getBigUint64(IoUring.sq.sqes, true) !== 0n, "sqes pointer");
      assert(s.getBigUint64(IoUring.cq.cqes, true) !== 0n, "cqes pointer");
      // The SQ ring's kernel head and tail start at 0 and sit inside the mapped SQ ring.
      const sqRing = s.getBigUint64(IoUring.sq.ringPtr, true);
      const sqSize = BigInt(s.getUint32(IoUring.sq.ringSz, true));
      for (const f of [IoUring.sq.khead, IoUring.sq.ktail, IoUring.sq.array]) {
        const p = s.getBigUint64(f, true);
        assert(p >= sqRing && p < sqRing + sqSize, `sq field at ${f} points inside the SQ ring`);
      }
      assertEquals([deref(IoUring.sq.khead), deref(IoUring.sq.ktail)], [0, 0]);
    } finally {
      ring.close();
    }
  },
});

Deno.test({
  name: "SQEs filled through the mapped views complete with their user_data in the mapped CQ",
  ignore: ignoreWithoutUring,
  fn() {
    const ring = Ring.create(8);
    try {
      for (let round = 0; round < 5; round++) { // wraps the 8-entry ring several times
        const space = ring.sqSpace;
        assertEquals(space, 8);
        for (let i = 0; i < 3; i++) ring.prep(Op.NOP, 0, -1, 0, 0n, 0, 0, 1000 + round * 10 + i);
        assertEquals(ring.sqSpace, 5);
        assertEquals(ring.submit(), 3);
        const seen: [number, number][] = [];
        while (seen.length < 3) {
          ring.reap((ud, res) => seen.push([ud, res]));
          if (seen.length < 3) ring.waitBlocking();
        }
        assertEquals(
          seen.sort((a, b) => a[0] - b[0]),
          [0, 1, 2].map((i) => [1000 + round * 10 + i, 0]),
        );
      }
    } finally {
      ring.close();
    }
  },
});
