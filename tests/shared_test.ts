import { assert, assertEquals, assertGreater } from "@std/assert";
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

Deno.test("ProducerRing packs records across many wraps, early ones past the soft end too; the consumer gets each once, whole, in order, taking any prefix", () => {
  for (const [seed, soft] of [[1, 4096], [2, 4096], [3, 1024], [4, 1024], [5, 400]]) {
    const r = rng(seed);
    const producer = new ProducerRing(4096, soft);
    let earlyWraps = 0;
    let lastEnd = 0;
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
      // Sometimes all of it: an empty ring is where the producer may go back to the start early.
      const all = r() < 0.3;
      consumer.consume((start, end) => {
        assert(end <= consumer.size, `seed ${seed}: a stretch ends past the data area`);
        // Records again from the start while the last ones ended far from the end: an early
        // wrap (its marker skipped by the producer's moving the head, or read here).
        if (start === 0 && lastEnd > 0 && lastEnd + 400 < consumer.size) earlyWraps++;
        let p = start;
        // Take a random number of whole records of what is offered.
        // A record is at least a header: fewer bytes before `end` are a wrap's skip.
        while (p + RECORD_HEADER_BYTES <= end && (all || r() < 0.9)) {
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
        lastEnd = p;
        return p;
      });
    }
    consumer.consume((_start, end) => end);
    assert(nextTake > 1000, `seed ${seed}: only ${nextTake} records went through`);
    // Past the soft end the producer goes back to the start whenever the ring is empty.
    if (soft < 4096) assertGreater(earlyWraps, 100, `seed ${seed}: early wraps`);
    else assertEquals(earlyWraps, 0, `seed ${seed}: early wraps without a soft end`);
    assertEquals(consumer.usedBytes, 0);
  }
});

Deno.test("ProducerRing: going back to the start early keeps all the room for a burst while the consumer stalls", () => {
  const producer = new ProducerRing(4096, 1024);
  const consumer = new ProducerRing(producer.sab);
  let seq = 1;
  // Up to the soft end, the consumer taking everything each time.
  while (Atomics.load(producer.ctl, 0) % 4096 + 100 <= 1024) {
    assert(put(producer, seq++, 100));
    consumer.consume((_start, end) => end);
  }
  assertEquals(consumer.usedBytes, 0);
  // The consumer stalls: the next record goes to the start, and the ring still takes a burst
  // of nearly all its bytes (not just the 1 KiB before the old position).
  let burst = 0;
  while (put(producer, seq++, 100)) burst += 100;
  assertGreater(burst, 4096 - 200);
  assertEquals(consumer.usedBytes, burst);
  // And the consumer gets them all, in order, from the start.
  let taken = 0;
  let first = -1;
  consumer.consume((start, end) => {
    if (first < 0) first = start;
    taken += end - start;
    return end;
  });
  assertEquals([first, taken], [0, burst]);
});

Deno.test("ProducerRing across two threads: a producer Worker going back to the start early, a consumer taking any prefix; every record once, whole, in order", async () => {
  const count = 200_000;
  const producer = new ProducerRing(64 * 1024);
  const consumer = new ProducerRing(producer.sab);
  const w = new Worker(new URL("./_ring_producer.ts", import.meta.url), { type: "module" });
  const done = new Promise((resolve) => w.onmessage = resolve);
  w.postMessage({ sab: producer.sab, soft: 4096, count, seed: 7 });
  const r = rng(8);
  let next = 1;
  let lastEnd = 0;
  let earlyWraps = 0;
  const deadline = Date.now() + 60_000;
  try {
    while (next <= count) {
      assert(Date.now() < deadline, `stuck at record ${next} of ${count}`);
      const before = next;
      consumer.consume((start, end) => {
        if (start === 0 && lastEnd > 0 && lastEnd + 400 < consumer.size) earlyWraps++;
        let p = start;
        while (p + RECORD_HEADER_BYTES <= end && r() < 0.98) {
          const len = consumer.view.getUint32(p + R_LENGTH, true);
          if (len === 0xffffffff) break;
          assertEquals(consumer.view.getUint32(p + R_SEQUENCE, true), next, "sequence");
          assert(p + len <= end, `record ${next} is not whole in its stretch`);
          const fill = next & 0xff;
          for (let i = p + RECORD_HEADER_BYTES; i < p + len; i++) {
            if (consumer.data[i] !== fill) assertEquals(consumer.data[i], fill, `byte of ${next}`);
          }
          next++;
          p += len;
        }
        lastEnd = p;
        return p;
      });
      if (next === before) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await done;
  } finally {
    w.terminate();
  }
  assertEquals(consumer.usedBytes, 0);
  assertGreater(earlyWraps, 50, "early wraps");
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
