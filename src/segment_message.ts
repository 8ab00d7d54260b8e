/**
 * The one wording of "this segment is damaged here": the offset of the damage comes right after
 * the file, once, and the reason after it. A reason may name other offsets of its own ("followed
 * by a valid record at offset N"), so appending the damage's offset after the reason read as
 * "at offset 30018 at offset 29947".
 *
 * @module
 */

/**
 * `Cannot <verb> segment "<path>" at offset <offset>: <reason>` (no offset: a gap or the header).
 *
 * @example
 * ```ts
 * import { segmentDamageMessage } from "./segment_message.ts";
 *
 * console.log(segmentDamageMessage("read", "wal-0-000001.log", "checksum mismatch", 8192));
 * // Cannot read segment "wal-0-000001.log" at offset 8192: checksum mismatch
 * ```
 */
export function segmentDamageMessage(
  verb: "open" | "read",
  path: string,
  reason: string,
  offset?: number,
): string {
  const at = offset === undefined ? "" : ` at offset ${offset}`;
  return `Cannot ${verb} segment "${path}"${at}: ${reason}`;
}

/** A damage's offset and reason, for a list of several in one segment. */
export function damageAt(offset: number, reason: string): string {
  return `at offset ${offset}: ${reason}`;
}
