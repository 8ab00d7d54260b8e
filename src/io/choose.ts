/**
 * Choosing a core's I/O backend from the options: io_uring, the synchronous backend, or io_uring
 * when it works (with the reason when it did not).
 *
 * @module
 */

import type { ResolvedWalOptions } from "../config.ts";
import { PerCoreWalError } from "../errors.ts";
import type { IoBackend } from "./backend.ts";
import { SyncBackend } from "./sync.ts";
import { UringBackend } from "./uring.ts";

/** Creates the backend the options ask for: io_uring, the sync backend, or io_uring if it works. */
export function createBackend(
  o: ResolvedWalOptions,
  completionSpinStop?: () => boolean,
  lazyCompletionWait = false,
): { backend: IoBackend; fallbackReason?: string } {
  if (o.backend === "sync") return { backend: new SyncBackend() };
  try {
    return {
      backend: new UringBackend({
        ringEntries: o.ringEntries,
        completionSpinStop,
        lazyCompletionWait,
      }),
    };
  } catch (e) {
    if (o.backend === "io_uring" || !(e instanceof PerCoreWalError)) throw e;
    return { backend: new SyncBackend(), fallbackReason: e.message };
  }
}
