/**
 * The {@linkcode DurableSource} of the manager of this process: each core's durable end as its
 * Worker publishes it in shared memory, and a wait that wakes on its durable notifications.
 *
 * @module
 */

import type { DurableSource } from "./watch.ts";
import { BigSlot, type Control, CoreState } from "./shared.ts";
import type { CoreWalWriter } from "./writer.ts";

/** The longest one wait lasts with no durable notification (a core closing is seen by then). */
const WAIT_MS = 1_000;

/** The durable ends of the cores of this process's manager. */
export function liveSource(cores: { control: Control; writer: CoreWalWriter }[]): DurableSource {
  /** The durable sequence of each core when its end was last asked for (only watched cores). */
  const seen: (number | undefined)[] = cores.map(() => undefined);
  return {
    end(coreId) {
      const p = cores[coreId].writer.syncedPosition;
      seen[coreId] = p.sequence;
      return p;
    },
    stopped(coreId) {
      const { control } = cores[coreId];
      const state = control.state;
      if (state === CoreState.Failed) return control.error();
      return state === CoreState.Closed ? true : undefined;
    },
    wait(signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        let settled = false;
        const finish = (error?: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal.removeEventListener("abort", abort);
          if (error === undefined) resolve();
          else reject(error);
        };
        const abort = () => finish(signal.reason);
        // The timer also keeps the event loop alive: it does not count `Atomics.waitAsync`.
        const timer = setTimeout(() => finish(), WAIT_MS);
        signal.addEventListener("abort", abort, { once: true });
        for (let c = 0; c < cores.length; c++) {
          const d = seen[c];
          if (d === undefined) continue;
          const r = Atomics.waitAsync(cores[c].control.b64, BigSlot.DURABLE, BigInt(d), WAIT_MS);
          if (!r.async) return finish();
          r.value.then((v) => v === "ok" && finish());
        }
      });
    },
  };
}
