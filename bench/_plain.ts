// The plain-Deno baseline of the micro-benchmarks: the comparison's framing and file
// (bench/compare/plain.ts), 512 records per writeSync + syncDataSync.
import { Framer, PlainFile } from "./compare/plain.ts";
import { PUT_OVERHEAD_BYTES } from "../src/format.ts";

/** Records per batch in the benchmarks. */
export const BATCH = 512;
/** 16-byte keys (the benchmark's keys). */
export const keys: Uint8Array[] = Array.from(
  { length: BATCH },
  (_, i) => new TextEncoder().encode(`key-${String(i).padStart(12, "0")}`),
);
/** The 112-byte value. */
export const value: Uint8Array = new Uint8Array(112).fill(0x5a);

/** An append-only file written with `Deno.FsFile` `writeSync` + `syncDataSync`. */
export class PlainLog {
  readonly #file: PlainFile;
  readonly #framer = new Framer(BATCH * (PUT_OVERHEAD_BYTES + 16 + 112));

  constructor(path: string) {
    this.#file = new PlainFile(path);
  }

  /** Frames `n` (≤ 512) records, writes them, and fdatasyncs. */
  write(n: number): void {
    this.#framer.reset();
    for (let i = 0; i < n; i++) this.#framer.put(keys[i], value);
    this.#file.writeAllSync(this.#framer.buf.subarray(0, this.#framer.used));
    this.#file.syncDataSync();
  }
}
