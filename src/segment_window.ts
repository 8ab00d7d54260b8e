/**
 * How much of a segment is laid out ahead of its writer (pure arithmetic, no I/O). A segment file
 * gets its full size at once, as a sparse file (no blocks), and only a window at its start is
 * laid out (zero-filled or fallocated, per `segmentFill`) before it is used; the window then grows
 * ahead of the writer, doubling up to {@linkcode MAX_LAYOUT_STEP_BYTES} at a time. A batch is
 * never written past the laid-out end: the zero-fill of a range is durable before any data goes
 * there, so it can never land on top of data. See docs/PERFORMANCE.md, "segment life cycle".
 *
 * @module
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** The largest first window: what a fresh segment holds on disk at most. */
export const MAX_FIRST_WINDOW_BYTES = 1 * MiB;
/** The largest step by which a window grows. */
export const MAX_LAYOUT_STEP_BYTES = 16 * MiB;
/** The smallest first window (a whole segment, when it is smaller). */
const MIN_FIRST_WINDOW_BYTES = 16 * KiB;
/** Windows end on 4 KiB boundaries (O_DIRECT writes the zeros). */
const BLOCK = 4096;

function _roundUp(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/**
 * The window laid out when a segment of `sizeBytes` is prepared: 1/64 of it, at least 16 KiB,
 * at most {@linkcode MAX_FIRST_WINDOW_BYTES} (1 MiB for the default 64 MiB segments).
 */
export function firstWindowBytes(sizeBytes: number): number {
  const w = Math.min(
    MAX_FIRST_WINDOW_BYTES,
    Math.max(MIN_FIRST_WINDOW_BYTES, _roundUp(sizeBytes / 64)),
  );
  return Math.min(w, sizeBytes);
}

/**
 * Where the laid-out range of a segment should end once data is to go up to `end`, or
 * `laidOut` when it is far enough ahead already. An open segment keeps at least half a step
 * ahead of its writer (a step is what is laid out so far, between the first window and
 * {@linkcode MAX_LAYOUT_STEP_BYTES}: the window doubles); a sealed one needs only `end`.
 */
export function layoutTarget(
  laidOut: number,
  end: number,
  sizeBytes: number,
  sealed: boolean,
): number {
  if (laidOut >= sizeBytes) return laidOut;
  if (sealed) return end <= laidOut ? laidOut : Math.min(sizeBytes, _roundUp(end));
  const step = Math.min(MAX_LAYOUT_STEP_BYTES, Math.max(firstWindowBytes(sizeBytes), laidOut));
  if (end + step / 2 <= laidOut) return laidOut;
  return Math.min(sizeBytes, _roundUp(Math.max(end, laidOut) + step));
}

/**
 * How far the next segment is laid out once the current one is half written: one step
 * ({@linkcode MAX_LAYOUT_STEP_BYTES}) at most, so that it starts without small in-place
 * extensions and a log holds at most a step more than it uses.
 */
export function nextSegmentWindow(sizeBytes: number): number {
  return Math.min(sizeBytes, MAX_LAYOUT_STEP_BYTES);
}
