/**
 * A fixed-size latency histogram: log-spaced buckets (8 per power of two) over microseconds.
 *
 * @module
 */

const SUB = 8;
const BUCKETS = 40 * SUB;

/**
 * Percentiles of a histogram, in microseconds.
 *
 * @example
 * ```ts
 * import { type LatencySummary, PerCoreWalConfig, PerCoreWalManager } from "@percore/wal";
 *
 * await using manager = await PerCoreWalManager.open(new PerCoreWalConfig("./data/wal", 2));
 * const latency: LatencySummary = manager.metrics()[0].syncLatency;
 * console.log(`fdatasync p50 ${latency.p50Us} µs, p99 ${latency.p99Us} µs`);
 * ```
 */
export interface LatencySummary {
  /** How many samples. */
  count: number;
  /** Median. */
  p50Us: number;
  /** 99th percentile. */
  p99Us: number;
  /** Largest sample. */
  maxUs: number;
}

/** Records latencies with a relative error below 9%, in constant memory. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;

  /** Adds one sample. */
  record(us: number): void {
    const v = Math.max(1, us);
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log2(v) * SUB));
    this.#counts[i]++;
    this.#count++;
    if (us > this.#max) this.#max = us;
  }

  /** The value below which a fraction `q` of the samples lie (bucket upper bound). */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return Math.min(this.#max, 2 ** ((i + 1) / SUB));
    }
    return this.#max;
  }

  /** Count, p50, p99 and max. */
  summary(): LatencySummary {
    return {
      count: this.#count,
      p50Us: this.quantile(0.5),
      p99Us: this.quantile(0.99),
      maxUs: this.#max,
    };
  }
}
