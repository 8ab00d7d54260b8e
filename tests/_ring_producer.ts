// The producer side of tests/shared_test.ts's two-thread ring test: writes `count` fake records
// of random lengths, in bursts with pauses (so that the consumer often empties the ring), into a
// ProducerRing with a small soft end. Message in: { sab, soft, count, seed }. Out: "done".
/// <reference lib="deno.worker" />
import { R_LENGTH, R_SEQUENCE, RECORD_HEADER_BYTES } from "../src/format.ts";
import { ProducerRing } from "../src/shared.ts";
import { rng } from "./_helpers.ts";

self.onmessage = (e: MessageEvent) => {
  const { sab, soft, count, seed } = e.data as {
    sab: SharedArrayBuffer;
    soft: number;
    count: number;
    seed: number;
  };
  const ring = new ProducerRing(sab, soft);
  const r = rng(seed);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let seq = 1; seq <= count; seq++) {
    const len = RECORD_HEADER_BYTES + Math.floor(r() * 300);
    let pos: number;
    while ((pos = ring.reserve(len)) < 0) ring.waitForSpace(10);
    ring.view.setUint32(pos + R_LENGTH, len, true);
    ring.view.setUint32(pos + R_SEQUENCE, seq, true);
    ring.view.setUint32(pos + R_SEQUENCE + 4, 0, true);
    ring.data.fill(seq & 0xff, pos + RECORD_HEADER_BYTES, pos + len);
    ring.publish(len);
    if (r() < 0.02) Atomics.wait(pause, 0, 0, r() < 0.5 ? 0.05 : 1);
  }
  self.postMessage("done");
};
