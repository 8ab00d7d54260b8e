/**
 * The write mode a core's engine uses: what the configuration asks, checked against what the
 * backend and the directory's file system can do.
 *
 * @module
 */

import type { PerCoreWalConfig } from "./config.ts";
import { PerCoreWalError } from "./errors.ts";
import type { IoBackend } from "./io/backend.ts";
import type { WriteModeInUse } from "./types.ts";

/**
 * The write mode for `config` on `io`: "auto" takes O_DIRECT where the file system allows it; a
 * mode the backend or the file system cannot honour is refused with "Unsupported".
 */
export function chooseWriteMode(config: PerCoreWalConfig, io: IoBackend): WriteModeInUse {
  const asked = config.options.writeMode;
  if (io.kind === "sync") {
    if (asked === "direct" || asked === "dsync") {
      throw new PerCoreWalError(
        "Unsupported",
        `writeMode "${asked}" needs the io_uring backend; the sync backend writes buffered`,
      );
    }
    return "buffered";
  }
  if (asked === "buffered") return "buffered";
  const direct = io.supportsDirect(config.baseDir);
  if (asked === "auto") return direct ? "direct" : "buffered";
  if (!direct) {
    throw new PerCoreWalError(
      "Unsupported",
      `writeMode "${asked}" needs O_DIRECT, which the file system of "${config.baseDir}" refuses ` +
        `(tmpfs does): use writeMode "buffered" or another directory`,
      { errno: "EINVAL" },
    );
  }
  return asked;
}
