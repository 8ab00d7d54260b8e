/**
 * errno numbers (Linux x86-64) to names, and the one function that turns `-errno` into an error.
 *
 * @module
 */

import { PerCoreWalError } from "../src/errors.ts";

const NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  38: "ENOSYS",
  40: "ELOOP",
  62: "ETIME",
  95: "EOPNOTSUPP",
  122: "EDQUOT",
  125: "ECANCELED",
};

/** The symbolic name of an errno number (`"EIO"`), or `"E<n>"` for an unlisted one. */
export function errnoName(errno: number): string {
  return NAMES[Math.abs(errno)] ?? `E${Math.abs(errno)}`;
}

/** Numbers of the errno names the engine reacts to. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EAGAIN: 11,
  ENOMEM: 12,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ETIME: 62,
  ECANCELED: 125,
} as const;

/**
 * Turns a negative `-errno` result into a `PerCoreWalError` with code "Io", the errno name, and
 * the operation; returns non-negative results unchanged.
 */
export function check(
  res: number,
  operation: string,
  where: { path?: string; coreId?: number; offset?: number } = {},
): number {
  if (res >= 0) return res;
  throw errnoError(-res, operation, where);
}

/** Builds the error for a failed operation. */
export function errnoError(
  errno: number,
  operation: string,
  where: { path?: string; coreId?: number; offset?: number } = {},
): PerCoreWalError {
  const name = errnoName(errno);
  const at = where.path === undefined ? "" : ` on "${where.path}"`;
  const off = where.offset === undefined ? "" : ` at offset ${where.offset}`;
  return new PerCoreWalError("Io", `${operation} failed${at}${off}: ${name}`, {
    errno: name,
    operation,
    segment: where.path,
    coreId: where.coreId,
    offset: where.offset,
  });
}
