/**
 * The options of `manager.writerHandle(coreId, options)`: how big the shared buffer of an
 * application Worker's handle is.
 *
 * @module
 */

import { checkOptionKeys } from "./option_keys.ts";

/**
 * Options of `manager.writerHandle()`.
 *
 * @example
 * ```ts ignore
 * // A Worker appending small events: a 1 MiB buffer (records up to 512 KiB - 8 bytes).
 * const handle = manager.writerHandle(0, { bufferBytes: 1 << 20 });
 * ```
 */
export interface WriterHandleOptions {
  /**
   * Bytes of the handle's shared buffer: a power of two from 4096 to 2^30. Default: the
   * configuration's `sharedBufferBytes`. Records larger than `bufferBytes / 2 - 8` are refused
   * ("RecordTooLarge") through this handle.
   */
  bufferBytes?: number;
}

/** `options.bufferBytes` checked (a `TypeError` or `RangeError`), or `fallback`. */
export function handleBufferBytes(options: unknown, fallback: number): number {
  if (options === undefined) return fallback;
  if (options === null || typeof options !== "object") {
    throw new TypeError("writerHandle() options must be an object");
  }
  checkOptionKeys(options, "WriterHandleOptions");
  const b = (options as WriterHandleOptions).bufferBytes;
  if (b === undefined) return fallback;
  if (typeof b !== "number") throw new TypeError(`bufferBytes must be a number, got ${typeof b}`);
  if (!Number.isInteger(b) || b < 4096 || b > 2 ** 30 || (b & (b - 1)) !== 0) {
    throw new RangeError(`bufferBytes must be a power of two from 4096 to 2^30, got ${b}`);
  }
  return b;
}
