/**
 * Path helpers of the `wal` tool.
 *
 * @module
 */

/**
 * The last component of a path.
 *
 * @example
 * ```ts
 * import { basename } from "./paths.ts";
 *
 * console.log(basename("/data/wal/wal-0-000001.log")); // wal-0-000001.log
 * ```
 */
export function basename(path: string): string {
  const p = path.replace(/\/+$/, "");
  return p.slice(p.lastIndexOf("/") + 1);
}

/**
 * The directory of a path (`.` for a bare name).
 *
 * @example
 * ```ts
 * import { dirname } from "./paths.ts";
 *
 * console.log(dirname("/data/wal/wal-0-000001.log")); // /data/wal
 * ```
 */
export function dirname(path: string): string {
  const p = path.replace(/\/+$/, "");
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}
