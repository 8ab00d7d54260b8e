/**
 * The waits for durability of one core's engine (`sync`, `waitDurable`, `close`): kept sorted by
 * the sequence they wait for, so that an acknowledgement resolves a prefix and a stalled segment
 * rejects a suffix.
 *
 * @module
 */

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Waits for a sequence to become durable, in sequence order. */
export class DurableWaiters {
  readonly #waiters: Waiter[] = [];

  /** Adds a wait for `seq` (after the waits for the same sequence); returns it, for `remove`. */
  add(seq: number, resolve: () => void, reject: (e: unknown) => void): object {
    const w = this.#waiters;
    let i = w.length;
    while (i > 0 && w[i - 1].seq > seq) i--;
    const waiter = { seq, resolve, reject };
    w.splice(i, 0, waiter);
    return waiter;
  }

  /** Removes a wait that was aborted (it is then never settled). */
  remove(waiter: object): void {
    const i = this.#waiters.indexOf(waiter as Waiter);
    if (i >= 0) this.#waiters.splice(i, 1);
  }

  /** Resolves the waits for sequences up to `durableSeq`. */
  resolveThrough(durableSeq: number): void {
    const w = this.#waiters;
    let n = 0;
    while (n < w.length && w[n].seq <= durableSeq) n++;
    for (const x of w.splice(0, n)) x.resolve();
  }

  /** Rejects the waits for sequences from `seq` on with `error`. */
  rejectFrom(seq: number, error: unknown): void {
    const w = this.#waiters;
    let i = w.length;
    while (i > 0 && w[i - 1].seq >= seq) i--;
    for (const x of w.splice(i)) x.reject(error);
  }

  /** Rejects every wait with `error`. */
  rejectAll(error: unknown): void {
    for (const x of this.#waiters.splice(0)) x.reject(error);
  }
}
