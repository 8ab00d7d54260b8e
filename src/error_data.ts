/**
 * Errors as data, to cross threads: a core's Worker posts its errors to the manager
 * (`postMessage`) and leaves its failure in shared memory for every producer. Both directions
 * live here, so that what is copied and what is rebuilt stay the same fields.
 *
 * @module
 */

import { PerCoreWalError, type PerCoreWalErrorCode } from "./errors.ts";

/** A plain copy of an error: what crosses `postMessage` or sits in shared memory as JSON. */
export interface ErrorData {
  code: string;
  message: string;
  errno?: string;
  operation?: string;
  segment?: string;
  offset?: number;
  coreId?: number;
}

/**
 * Copies a `PerCoreWalError` (or anything thrown) into plain data. A `TypeError` or `RangeError`
 * keeps its kind (an argument error on the other side); anything else becomes "Failed".
 */
export function errorToData(e: unknown): ErrorData {
  if (e instanceof PerCoreWalError) {
    return {
      code: e.code,
      message: e.message,
      errno: e.errno,
      operation: e.operation,
      segment: e.segment,
      offset: e.offset,
      coreId: e.coreId,
    };
  }
  return {
    code: e instanceof TypeError || e instanceof RangeError ? e.name : "Failed",
    message: String(e),
  };
}

/** Rebuilds the error that {@linkcode errorToData} copied. */
export function errorFromData(d: ErrorData): PerCoreWalError | TypeError | RangeError {
  if (d.code === "TypeError") return new TypeError(d.message);
  if (d.code === "RangeError") return new RangeError(d.message);
  return new PerCoreWalError(d.code as PerCoreWalErrorCode, d.message, d);
}
