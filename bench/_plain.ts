// The plain-Deno baseline of the benchmarks, as a competent user writes it: frame records with
// the same bytes and CRC32C as the WAL, append them with writeSync, fdatasync per batch.
import {
  PUT_OVERHEAD_BYTES,
  R_CRC,
  RECORD_HEADER_BYTES,
  recordCrc,
  RecordType,
  saltState,
  writeRecordHeader,
} from "../src/format.ts";

/** Records per batch in the benchmarks. */
export const BATCH = 512;
/** 16-byte keys (the benchmark's keys). */
export const keys: Uint8Array[] = Array.from(
  { length: BATCH },
  (_, i) => new TextEncoder().encode(`key-${String(i).padStart(12, "0")}`),
);
/** The 112-byte value. */
export const value: Uint8Array = new Uint8Array(112).fill(0x5a);
const REC = PUT_OVERHEAD_BYTES + 16 + 112;
const salt = saltState(0x9e3779b9);

/** An append-only file written with `Deno.FsFile` `writeSync` + `syncDataSync`. */
export class PlainLog {
  readonly #file: Deno.FsFile;
  readonly #buf = new Uint8Array(BATCH * REC);
  readonly #view = new DataView(this.#buf.buffer);
  #seq = 1;

  constructor(path: string) {
    this.#file = Deno.openSync(path, { create: true, append: true });
  }

  /** Frames `n` (≤ 512) records, writes them, and fdatasyncs. */
  write(n: number): void {
    const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
    for (let i = 0; i < n; i++) {
      const pos = i * REC;
      writeRecordHeader(this.#view, pos, REC, RecordType.put, 0, 0, this.#seq++, us, 0);
      this.#view.setUint16(pos + RECORD_HEADER_BYTES, 16, true);
      this.#buf.set(keys[i], pos + PUT_OVERHEAD_BYTES);
      this.#buf.set(value, pos + PUT_OVERHEAD_BYTES + 16);
      this.#view.setUint32(pos + R_CRC, recordCrc(this.#buf, pos, REC, salt), true);
    }
    let done = 0;
    while (done < n * REC) done += this.#file.writeSync(this.#buf.subarray(done, n * REC));
    this.#file.syncDataSync();
  }
}
