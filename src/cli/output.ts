/**
 * Buffered line output for the commands that print many lines (`dump`, `tail`): one write per
 * 64 KiB instead of one per line.
 *
 * @module
 */

const _FLUSH_CHARS = 64 * 1024;

/**
 * Lines to standard output, buffered; `flush()` (or disposal) writes them.
 *
 * @example
 * ```ts
 * import { LineWriter } from "./output.ts";
 *
 * using out = new LineWriter();
 * out.line("hello");
 * ```
 */
export class LineWriter {
  readonly #sink: { writeSync(p: Uint8Array): number };
  readonly #enc = new TextEncoder();
  #parts: string[] = [];
  #chars = 0;

  /** Lines to `sink` (default: standard output). */
  constructor(sink: { writeSync(p: Uint8Array): number } = Deno.stdout) {
    this.#sink = sink;
  }

  /** Adds a line (a newline is appended). */
  line(text: string): void {
    this.#parts.push(text, "\n");
    this.#chars += text.length + 1;
    if (this.#chars >= _FLUSH_CHARS) this.flush();
  }

  /** Writes the buffered lines. */
  flush(): void {
    if (this.#parts.length === 0) return;
    const bytes = this.#enc.encode(this.#parts.join(""));
    this.#parts = [];
    this.#chars = 0;
    let n = 0;
    while (n < bytes.length) n += this.#sink.writeSync(bytes.subarray(n));
  }

  /** Writes the buffered lines. */
  [Symbol.dispose](): void {
    this.flush();
  }
}
