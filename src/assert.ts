/**
 * Invariants as code. An invariant that does not hold is a bug of the module: it is reported as
 * a `PerCoreWalError` with code `Internal` naming the invariant, and the engine fails the core
 * that met it, never continuing silently.
 *
 * @module
 */

import { PerCoreWalError, type PerCoreWalErrorDetails } from "./errors.ts";

/** The error of a broken invariant: code `Internal`, the invariant in the message. */
export function invariantError(
  invariant: string,
  details: PerCoreWalErrorDetails = {},
): PerCoreWalError {
  const where = details.coreId === undefined ? "" : ` (core ${details.coreId})`;
  return new PerCoreWalError("Internal", `Invariant violated${where}: ${invariant}`, details);
}

/**
 * Throws {@linkcode invariantError} unless `condition` holds. Costs one comparison when it does;
 * the message is built only when it fails.
 */
export function assert(
  condition: boolean,
  invariant: string,
  details?: PerCoreWalErrorDetails,
): asserts condition {
  if (!condition) throw invariantError(invariant, details);
}
