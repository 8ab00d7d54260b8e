/**
 * The error of a command line that asks for something that cannot be (exit 2 of the `wal`
 * tool): a malformed option, or a selector out of the WAL's range such as `--core 7` on a WAL of
 * two cores.
 *
 * @module
 */

/**
 * A usage error: `wal` prints its message with the command's usage and exits 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./usage.ts";
 *
 * const e = new UsageError("--core 7 is out of range: the WAL has 2 cores (0..1)");
 * console.log(e.message);
 * ```
 */
export class UsageError extends Error {}
