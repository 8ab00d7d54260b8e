/**
 * Choosing a core's I/O backend from the options: io_uring, the synchronous backend, or io_uring
 * when it works (with the reason when it did not).
 *
 * @module
 */

import type { ResolvedWalOptions } from "../config.ts";
import { libc } from "../../ffi/libc.ts";
import { liburing } from "../../ffi/liburing.ts";
import { PerCoreWalError } from "../errors.ts";
import type { IoBackend } from "./backend.ts";
import { enableNativeCrc32c } from "./checksum.ts";
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

/**
 * Loads the native libraries a core's backend uses (libc, liburing, ISA-L's CRC32C) ahead of
 * their first use, where FFI is granted: a core Worker calls it as it starts, while the manager
 * still locks and checks the directory, so that their loading (about 5 ms) is off `open()`'s
 * path. Never prompts for the permission and never throws: a library that cannot load is loaded
 * again, and the reason reported, where it is first used.
 *
 * @example
 * ```ts ignore
 * preloadNative(); // at a core Worker's start
 * ```
 */
export function preloadNative(): void {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return;
  for (const load of [libc, liburing, enableNativeCrc32c]) {
    try {
      load();
    } catch {
      // Reported where the library is first used (createBackend, the log's open).
    }
  }
}
