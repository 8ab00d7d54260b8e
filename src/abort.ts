/**
 * Cancellation of the module's waits by an `AbortSignal`: one validation and one race, used by
 * every wait (`sync`, `waitDurable`, the `...Async` appends, checkpoints, recovery).
 *
 * The rule every wait keeps: an aborted wait rejects with `signal.reason` (at once when the
 * signal is already aborted) and leaves nothing half-done. What it waited for goes on (a record
 * it waited for is still written and becomes durable); only the waiting stops, and the waiter is
 * removed (`onAbort`), so that nothing is kept alive for it.
 *
 * @module
 */

import { safeInteger } from "./numbers.ts";
import { checkOptionKeys } from "./option_keys.ts";

/**
 * `signal` checked: `undefined`, or an `AbortSignal` (anything else is a `TypeError`, thrown).
 * `what` names the option in the message.
 */
export function checkSignal(signal: unknown, what = "signal"): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(
      `${what} must be an AbortSignal, got ${signal === null ? "null" : typeof signal}`,
    );
  }
  return signal;
}

/**
 * `promise`, or a rejection with `signal.reason` as soon as `signal` aborts (at once if it is
 * aborted already), whichever comes first. `onAbort` runs once, on abort, before the rejection:
 * it removes the waiter behind `promise` (which then may never settle; its later rejection, if
 * any, is handled here). Without a signal, `promise` itself.
 */
export function raceSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort?: () => void,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    onAbort?.();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      promise.catch(() => {});
      onAbort?.();
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", abort);
        reject(error);
      },
    );
  });
}

/** Throws `signal.reason` if `signal` is aborted (a step boundary of a long operation). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/**
 * `signal` of an options object, validated: the options argument itself must be an object when
 * given (a `TypeError` otherwise).
 */
export function signalOf(options: unknown, what = "options"): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${what} must be an object, got ${options === null ? "null" : typeof options}`,
    );
  }
  return checkSignal((options as { signal?: unknown }).signal);
}

/** The signal of the options of a wait that takes only a signal (`sync`), keys checked. */
export function waitSignal(options: unknown): AbortSignal | undefined {
  checkOptionKeys(options, "WaitOptions");
  return signalOf(options);
}

/**
 * The checked arguments of a `waitDurable(sequence, options)`: `sequence` a safe integer, and
 * the signal of `options`; throws a `TypeError` or `RangeError` otherwise.
 */
export function durableWaitSignal(sequence: unknown, options: unknown): AbortSignal | undefined {
  const signal = waitSignal(options);
  safeInteger(sequence, "sequence");
  return signal;
}

/**
 * Options of the waits that only take a signal (`sync`, `waitDurable`).
 *
 * @example
 * ```ts ignore
 * await writer.sync({ signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface WaitOptions {
  /** Stops the wait (not the work): it rejects with `signal.reason`. */
  signal?: AbortSignal;
}
