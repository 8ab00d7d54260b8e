/**
 * A progress bar for long scans, drawn on standard error when it is a terminal and never
 * otherwise (so pipes and files get only the output).
 *
 * @module
 */

const _WIDTH = 30;
const _EVERY_MS = 100;

/**
 * Progress of a scan over a known number of bytes.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 *
 * using p = new Progress("verify", 1000);
 * p.update(500);
 * ```
 */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #on: boolean;
  #last = 0;
  #drawn = false;
  #closed = false;

  /** A bar labelled `label` for `totalBytes`; drawn only if `enabled` and stderr is a TTY. */
  constructor(label: string, totalBytes: number, enabled = true) {
    this.#label = label;
    this.#total = Math.max(1, totalBytes);
    this.#on = enabled && Deno.stderr.isTerminal();
  }

  /** Shows `doneBytes` of the total (at most every 100 ms). */
  update(doneBytes: number): void {
    if (!this.#on || this.#closed) return;
    const now = performance.now();
    if (now - this.#last < _EVERY_MS) return;
    this.#last = now;
    const f = Math.min(1, doneBytes / this.#total);
    const full = Math.round(f * _WIDTH);
    const bar = "#".repeat(full) + "-".repeat(_WIDTH - full);
    const mib = (n: number) => (n / 1048576).toFixed(1);
    _write(
      `\r${this.#label} [${bar}] ${(f * 100).toFixed(0).padStart(3)}% ` +
        `${mib(doneBytes)}/${mib(this.#total)} MiB`,
    );
    this.#drawn = true;
  }

  /** Erases the bar. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#drawn) _write("\r\x1b[2K");
  }

  /** Erases the bar. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function _write(s: string): void {
  const b = new TextEncoder().encode(s);
  let n = 0;
  while (n < b.length) n += Deno.stderr.writeSync(b.subarray(n));
}
