/**
 * A fixed-size latency histogram: log-spaced buckets (8 per power of two) over microseconds.
 *
 * @module
 */

const SUB = 8;
const BUCKETS = 40 * SUB;

/**
 * Percentiles of a histogram, in whole microseconds (rounded: no float noise in JSON).
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

/**
 * Upper bounds (microseconds) of the cumulative buckets {@linkcode LatencyHistogram.buckets}
 * reports, for Prometheus-style histograms: powers of two from 64 µs to 4.2 s. They fall on
 * the histogram's own bucket edges, so the counts are exact (a sample equal to a bound counts
 * in the next one).
 *
 * @example Prometheus buckets of a core's fdatasync latency
 * ```ts ignore
 * import { LATENCY_BUCKET_BOUNDS_US } from "@percore/wal";
 *
 * const { counts, sumUs } = manager.metrics()[0].syncLatencyBuckets;
 * LATENCY_BUCKET_BOUNDS_US.forEach((us, i) => console.log(`le="${us / 1e6}"`, counts[i]));
 * console.log(sumUs / 1e6);
 * ```
 */
export const LATENCY_BUCKET_BOUNDS_US: readonly number[] = Object.freeze(
  Array.from({ length: 17 }, (_, i) => 2 ** (i + 6)),
);

/**
 * A histogram's cumulative bucket counts and sum, as Prometheus exposes them.
 *
 * @example
 * ```ts ignore
 * const b: LatencyBuckets = manager.metrics()[0].syncLatencyBuckets;
 * console.log(b.counts.at(-1), b.sumUs);
 * ```
 */
export interface LatencyBuckets {
  /** Per bound of {@linkcode LATENCY_BUCKET_BOUNDS_US}: samples below it (cumulative). */
  counts: number[];
  /** Sum of every sample, in whole microseconds (rounded). */
  sumUs: number;
}

/** Records latencies with a relative error below 9%, in constant memory. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;
  #sum = 0;

  /** Adds one sample. */
  record(us: number): void {
    const v = Math.max(1, us);
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log2(v) * SUB));
    this.#counts[i]++;
    this.#count++;
    this.#sum += us;
    if (us > this.#max) this.#max = us;
  }

  /** Cumulative counts below each of {@linkcode LATENCY_BUCKET_BOUNDS_US}, and the sum. */
  buckets(): LatencyBuckets {
    const counts: number[] = [];
    let seen = 0;
    let i = 0;
    for (const bound of LATENCY_BUCKET_BOUNDS_US) {
      // Bucket i holds samples below 2 ** ((i + 1) / SUB): all of them are below `bound`.
      const last = Math.log2(bound) * SUB - 1;
      for (; i <= last; i++) seen += this.#counts[i];
      counts.push(seen);
    }
    return { counts, sumUs: Math.round(this.#sum) };
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
      p50Us: Math.round(this.quantile(0.5)),
      p99Us: Math.round(this.quantile(0.99)),
      maxUs: Math.round(this.#max),
    };
  }
}
