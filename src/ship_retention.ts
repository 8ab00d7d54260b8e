/**
 * The one rule of retention with shippers: a segment is retired only when every registered
 * shipper shipped every entry it holds. Checkpoints (`checkpoint.ts`) and the CLI ask it.
 *
 * @module
 */

import { PerCoreWalError } from "./errors.ts";
import { openRegularFile, readFullyAt } from "./fs.ts";
import { SEGMENT_HEADER_BYTES } from "./format.ts";
import { decodeSegmentHeader } from "./segment_header.ts";
import { listShipperMarks, type ShipperMarks } from "./ship_marks.ts";

/**
 * What the registered shippers of a WAL hold back, read from their marks files now (the files
 * are the truth, across restarts): per core the lowest shipped sequence of any shipper (0 for
 * every core when a marks file is invalid: nothing is known to be shipped). Undefined when no
 * shipper is registered.
 */
export function shippedFloor(
  walDir: string,
  walId: string | null,
): { floor: (coreId: number) => number; shippers: ShipperMarks[] } | undefined {
  const shippers = listShipperMarks(walDir, walId);
  if (shippers.length === 0) return undefined;
  const anyInvalid = shippers.some((s) => s.invalid !== undefined);
  const floor = (coreId: number) =>
    anyInvalid ? 0 : Math.min(...shippers.map((s) => s.shipped[coreId] ?? 0));
  return { floor, shippers };
}

/**
 * Whether segment `segs[i]` of a core may go as far as shippers are concerned: every entry it
 * holds is at most `shipped`. Its entries end before the first sequence of the segment after it
 * (sequences only grow); without a next segment, or one whose header does not read, nothing is
 * proven and the segment stays.
 */
export function segmentShipped(
  segs: readonly { index: number; path: string }[],
  i: number,
  shipped: number,
): boolean {
  const next = segs[i + 1];
  if (next === undefined) return false;
  const first = _firstSequence(next.path);
  return first !== undefined && first - 1 <= shipped;
}

/**
 * The segments of `segs` (one core's, by index) before index `keepFrom` that may be retired:
 * the leading ones that every shipper shipped whole (`floor`: the lowest shipped sequence; no
 * shipper: every one before `keepFrom`).
 */
export function retirableSegments(
  segs: readonly { index: number; path: string }[],
  keepFrom: number,
  floor: number | undefined,
): { index: number; path: string }[] {
  const out: { index: number; path: string }[] = [];
  for (let i = 0; i < segs.length; i++) {
    if (segs[i].index >= keepFrom) break;
    // Marks only grow with sequences: once one segment is held, so is every later one.
    if (floor !== undefined && !segmentShipped(segs, i, floor)) break;
    out.push(segs[i]);
  }
  return out;
}

/** How many of `segs` before `keepFrom` the shippers hold from retirement (`floor` as above). */
export function heldByShippers(
  segs: readonly { index: number; path: string }[],
  keepFrom: number,
  floor: number,
): number {
  return segs.filter((s) => s.index < keepFrom).length -
    retirableSegments(segs, keepFrom, floor).length;
}

/** The first sequence a segment's header names, or undefined when it does not read. */
function _firstSequence(path: string): number | undefined {
  try {
    using f = openRegularFile(path, "Segment");
    const b = new Uint8Array(SEGMENT_HEADER_BYTES);
    readFullyAt(f, b, 0);
    return decodeSegmentHeader(b, path).firstSequence;
  } catch (e) {
    // Unreadable, torn, not a segment: it proves nothing, so the segment before it stays.
    if (e instanceof PerCoreWalError || e instanceof Error) return undefined;
    throw e;
  }
}
