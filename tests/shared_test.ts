import { assert, assertEquals } from "@std/assert";
import { R_LENGTH, R_SEQUENCE, RECORD_HEADER_BYTES } from "../src/format.ts";
import { ProducerRing } from "../src/shared.ts";
import { rng } from "./_helpers.ts";

/** Writes a fake record of `len` bytes with sequence `seq` and a fill derived from it. */
function put(ring: ProducerRing, seq: number, len: number): boolean {
  const pos = ring.reserve(len);
  if (pos < 0) return false;
  ring.view.setUint32(pos + R_LENGTH, len, true);
  ring.view.setUint32(pos + R_SEQUENCE, seq, true);
  ring.view.setUint32(pos + R_SEQUENCE + 4, 0, true);
  ring.data.fill(seq & 0xff, pos + RECORD_HEADER_BYTES, pos + len);
  ring.publish(len);
  return true;
}

Deno.test("ProducerRing packs records across many wraps; the consumer gets each once, whole, in order, taking any prefix", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = rng(seed);
    const producer = new ProducerRing(4096);
    const consumer = new ProducerRing(producer.sab);
    let nextPut = 1;
    let nextTake = 1;
    const lengths = new Map<number, number>();
    for (let round = 0; round < 3000; round++) {
      // Odd lengths too: records are packed, not aligned.
      while (r() < 0.7) {
        const len = RECORD_HEADER_BYTES + Math.floor(r() * 300);
        if (!put(producer, nextPut, len)) break;
        lengths.set(nextPut++, len);
      }
      consumer.consume((start, end) => {
        assert(end <= consumer.size, `seed ${seed}: a stretch ends past the data area`);
        let p = start;
        // Take a random number of whole records of what is offered.
        // A record is at least a header: fewer bytes before `end` are a wrap's skip.
        while (p + RECORD_HEADER_BYTES <= end && r() < 0.9) {
          const len = consumer.view.getUint32(p + R_LENGTH, true);
          if (len === 0xffffffff) break; // the wrap marker: consume() goes on from 0
          const seq = consumer.view.getUint32(p + R_SEQUENCE, true);
          assertEquals(seq, nextTake, `seed ${seed}: sequence`);
          assertEquals(len, lengths.get(seq), `seed ${seed}: length of ${seq}`);
          assert(p + len <= end, `seed ${seed}: record ${seq} is not whole in its stretch`);
          const body = consumer.data.subarray(p + RECORD_HEADER_BYTES, p + len);
          assert(body.every((b) => b === (seq & 0xff)), `seed ${seed}: bytes of ${seq}`);
          lengths.delete(seq);
          nextTake++;
          p += len;
        }
        return p;
      });
    }
    consumer.consume((_start, end) => end);
    assert(nextTake > 1000, `seed ${seed}: only ${nextTake} records went through`);
    assertEquals(consumer.usedBytes, 0);
  }
});

Deno.test("ProducerRing: fewer than 8 bytes left before the end mean a wrap without a marker", () => {
  const ring = new ProducerRing(4096);
  // 40 records of 101 bytes end at 4040, then one of 50 leaves 4096 - 4090 = 6.
  let seq = 1;
  for (; seq <= 40; seq++) assert(put(ring, seq, 101));
  assert(put(ring, seq++, 50));
  ring.consume((_s, e) => e);
  assertEquals(ring.usedBytes, 0);
  assertEquals(ring.reserve(100), 0, "the next record starts at 0");
  ring.publish(100);
  let seen = -1;
  ring.consume((start, end) => {
    seen = start;
    return end;
  });
  assertEquals(seen, 0, "the consumer skips the 6 bytes without reading a marker");
});
