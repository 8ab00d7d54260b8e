/**
 * Segment preparation for one core's engine: creating the next segment file, laying it out
 * (zero-filled or fallocated), making that durable, and discarding or closing segments. The
 * engine (`core_log.ts`) decides when to rotate; this module only makes segments ready.
 *
 * @module
 */

import type { PerCoreWalConfig, ResolvedWalOptions } from "./config.ts";
import { PerCoreWalError } from "./errors.ts";
import { encodeSegmentHeader, SEGMENT_DATA_OFFSET } from "./format.ts";
import { entryKind, lstatIfExists, lstatPath, refuseNonRegular, removeIfExists } from "./fs.ts";
import type { IoBackend, IoFile, OpenFileOptions } from "./io/backend.ts";
import type { WriteModeInUse } from "./types.ts";
import { firstWindowBytes, layoutTarget } from "./segment_window.ts";

const MiB = 1024 * 1024;
/**
 * `segmentFill: "auto"` skips the zero-fill of the next segment while this core's batches average
 * at least this many bytes: writing every byte twice then costs more than the journal commit of
 * the extent conversion that each fdatasync of an unwritten extent pays.
 */
const AUTO_ALLOCATE_BATCH_BYTES = 256 * 1024;

/** How a segment was laid out: zero-filled, or fallocated only (reads as zeros all the same). */
export type SegmentLayout = "zeros" | "allocate";

/** One segment file of a core, as the engine uses it. */
export interface Segment {
  index: number;
  path: string;
  file: IoFile;
  firstSequence: number;
  salt: number;
  /** The header block, written with the segment's first batch. */
  headerBlock: Uint8Array | undefined;
  /** Batches that belong to it and are not yet acknowledged. */
  batches: number;
  sealed: boolean;
  ready: boolean;
  error: PerCoreWalError | undefined;
  prepared: Promise<void>;
  /** How it was laid out: zero-filled, or fallocated only (reads as zeros all the same). */
  fill: SegmentLayout;
  /**
   * How many bytes from its start are laid out, durably: no batch is written past it (the
   * zero-fill of a range must never land on data). The rest of the file is sparse.
   */
  laidOut: number;
  /** Whether a layout of more of it is in flight (its file is then not closed). */
  extending: boolean;
  /** A close asked for while a layout was in flight: done when it settles. */
  closeWanted?: boolean;
  /**
   * The previous segment, while its preparation is not durable yet: this one's file is created
   * only then (an empty segment before a laid-out one is then always damage: FORMAT.md).
   */
  after?: Segment;
  /**
   * Whether this process created the file (an open with `createNew` that succeeded). Only such a
   * file is removed on discard: after `EEXIST` the file is someone else's.
   */
  created?: boolean;
}

/**
 * Creates and lays out the segments of one core, and keeps the set of segments whose files are
 * open. `onSettled` runs when a background preparation succeeds or fails (the engine then
 * submits what waited for it).
 */
export class SegmentPreparer {
  /** Segments whose files are open (prepared, current, or sealed with batches in flight). */
  readonly openSegments: Set<Segment> = new Set<Segment>();
  readonly #config: PerCoreWalConfig;
  readonly #options: ResolvedWalOptions;
  readonly #io: IoBackend;
  readonly #coreId: number;
  readonly #mode: WriteModeInUse;
  readonly #onSettled: (seg: Segment) => void;
  /** A MiB of zeros for the zero-fill, allocated on first use. */
  #zeros: Uint8Array | undefined;
  /** What `segmentFill: "auto"` chose last, and the batch counters when it did. */
  #autoFill: SegmentLayout = "zeros";
  #fillBatches = 0;
  #fillBytes = 0;
  /** Set by {@linkcode settle}: no layout starts any more. */
  #settling = false;
  /** Segments whose file waits for the previous segment's preparation to be durable. */
  readonly #deferred: Segment[] = [];

  /** A preparer for core `coreId`, writing through `io` in `mode`. */
  constructor(
    config: PerCoreWalConfig,
    coreId: number,
    io: IoBackend,
    mode: WriteModeInUse,
    onSettled: (seg: Segment) => void,
  ) {
    this.#config = config;
    this.#options = config.options;
    this.#coreId = coreId;
    this.#io = io;
    this.#mode = mode;
    this.#onSettled = onSettled;
  }

  /** Whether a segment is being prepared, or more of one laid out. */
  get preparing(): boolean {
    for (const seg of this.openSegments) {
      if ((!seg.ready && seg.error === undefined) || seg.extending) return true;
    }
    return false;
  }

  /**
   * Creates segment `index` in the background, laid out as `segmentFill` says ({@linkcode
   * fillFor}, from the engine's batch counters). With `quiet`, a failure to create the file is
   * kept on the segment and surfaces only if the log has to rotate into it. While `after` (the
   * previous segment) is not ready, the file is created only once it is; a failure then is kept
   * on the segment whatever `quiet` says.
   */
  prepare(
    index: number,
    quiet: boolean,
    batches: number,
    bytes: number,
    after?: Segment,
  ): Segment {
    const path = this.#config.segmentPath(this.#coreId, index);
    const fill = this.fillFor(batches, bytes);
    const seg: Segment = {
      index,
      path,
      file: { path },
      firstSequence: 0,
      salt: 0,
      headerBlock: undefined,
      batches: 0,
      sealed: false,
      ready: false,
      error: undefined,
      prepared: Promise.resolve(),
      fill,
      laidOut: 0,
      extending: false,
      created: false,
    };
    if (after !== undefined && !after.ready) {
      seg.after = after;
      this.#deferred.push(seg);
      return seg;
    }
    try {
      this.#create(seg);
    } catch (e) {
      if (!quiet) throw e;
      seg.error = e as PerCoreWalError;
    }
    return seg;
  }

  /**
   * Prepares again a segment whose preparation failed after the engine began to use it (its
   * batches wait, with its salt and first sequence): its file is made anew in place.
   */
  retry(seg: Segment): void {
    if (seg.error === undefined) return;
    if (seg.ready) {
      // Its preparation succeeded and data may be on it: only the failed layout is tried again.
      seg.error = undefined;
      this.keepAhead(seg, seg.laidOut + 1);
      return;
    }
    if (seg.created) {
      this.#io.closeFile(seg.file);
      removeIfExists(seg.path);
      seg.created = false;
    }
    seg.file = { path: seg.path };
    try {
      this.#create(seg);
      seg.error = undefined;
    } catch (e) {
      seg.error = _asWalError(e);
    }
  }

  /** Opens a new file for `seg` and starts laying it out; throws if the file cannot be made. */
  #create(seg: Segment): void {
    try {
      seg.file = this.#io.openFile(seg.path, this.openOptions(true));
    } catch (e) {
      throw _inTheWay(e, seg.path);
    }
    seg.created = true;
    seg.ready = false;
    this.openSegments.add(seg);
    seg.prepared = this.#layOut(seg).then(
      () => {
        seg.ready = true;
        this.#startDeferred(seg);
        this.#onSettled(seg);
      },
      (e) => {
        seg.error = _asWalError(e);
        this.#onSettled(seg);
      },
    );
  }

  /** Creates the segment that waited for `ready`'s preparation to be durable. */
  #startDeferred(ready: Segment): void {
    const i = this.#deferred.findIndex((d) => d.after === ready);
    if (i < 0 || this.#settling) return;
    const [seg] = this.#deferred.splice(i, 1);
    seg.after = undefined;
    try {
      this.#create(seg);
    } catch (e) {
      seg.error = _asWalError(e);
      this.#onSettled(seg);
    }
  }

  /**
   * How the next segment is laid out. `"auto"` looks at the batches written since its last
   * choice: large ones (bandwidth-bound) skip the zero-fill, small ones (latency-bound) keep it;
   * with no batch since (a new or idle log), the last choice stands, at first `"zeros"`.
   */
  fillFor(batches: number, bytes: number): SegmentLayout {
    const f = this.#options.segmentFill;
    if (f !== "auto") return f;
    const newBatches = batches - this.#fillBatches;
    if (newBatches > 0) {
      const avg = (bytes - this.#fillBytes) / newBatches;
      this.#autoFill = avg >= AUTO_ALLOCATE_BATCH_BYTES ? "allocate" : "zeros";
      this.#fillBatches = batches;
      this.#fillBytes = bytes;
    }
    return this.#autoFill;
  }

  /**
   * Gives a new segment its full size, as a sparse file, lays out its first window
   * (`segment_window.ts`) and makes that durable (size, window and directory entry). The rest is
   * laid out ahead of the writer ({@linkcode keepAhead}).
   */
  async #layOut(seg: Segment): Promise<void> {
    await Promise.resolve();
    const size = this.#options.segmentSizeBytes;
    this.#io.truncate(seg.file, size);
    const window = firstWindowBytes(size);
    await this.#layOutRange(seg, 0, window);
    this.#io.syncDirectory(this.#config.baseDir);
    seg.laidOut = window;
  }

  /**
   * Lays out `[from, to)` of a segment and makes it durable. With `"zeros"`, every block is
   * written, so that an fdatasync into it need not commit extent metadata. With `"allocate"`,
   * the blocks stay unwritten extents: they read as zeros, like zero-filled ones, and each data
   * fdatasync commits their conversion; no byte is written twice.
   */
  async #layOutRange(seg: Segment, from: number, to: number): Promise<void> {
    // Where the blocks cannot be reserved (no fallocate: the sync backend, some file systems),
    // the zeros are written whatever segmentFill says: a sparse range would meet a full disk at
    // a data write, which fails the core, instead of here, which only holds its batches back.
    if (!this.#io.allocate(seg.file, to) || seg.fill === "zeros") {
      const zeros = this.#zeros ??= this.#io.allocBuffer(MiB);
      for (let off = from; off < to; off += 4 * MiB) {
        const parts = [];
        for (let o = off; o < Math.min(off + 4 * MiB, to); o += MiB) {
          parts.push({ data: zeros.subarray(0, Math.min(MiB, to - o)), offset: o });
        }
        await this.#io.writeParts(seg.file, parts, false, "prepare");
      }
    }
    await this.#io.writeParts(seg.file, [], true, "prepare");
  }

  /**
   * Lays out more of a ready segment in the background when data is to go up to `end` and the
   * laid-out range is not far enough ahead (`layoutTarget`). Batches past the laid-out end wait
   * for it: `onSettled` runs when it succeeds or fails (a failure is kept on the segment, whose
   * waiting batches then stall until {@linkcode retry}).
   */
  keepAhead(seg: Segment, end: number): void {
    const size = this.#options.segmentSizeBytes;
    this.layOutTo(seg, layoutTarget(seg.laidOut, end, size, seg.sealed));
  }

  /**
   * Lays out a ready segment up to `to` in the background (nothing if it is laid out that far,
   * or a layout is in flight); see {@linkcode keepAhead}.
   */
  layOutTo(seg: Segment, to: number): void {
    if (this.#settling || !seg.ready || seg.extending || seg.error !== undefined) return;
    if (to <= seg.laidOut) return;
    const from = seg.laidOut;
    seg.extending = true;
    seg.prepared = (async () => {
      await Promise.resolve();
      await this.#layOutRange(seg, from, to);
    })().then(
      () => {
        seg.laidOut = to;
      },
      (e) => {
        seg.error = _asWalError(e);
      },
    ).finally(() => {
      seg.extending = false;
      if (seg.closeWanted) this.closeSegment(seg);
      else this.#onSettled(seg);
    });
  }

  /**
   * Opens the last segment that recovery kept, to continue in it or close it: it is ready, its
   * header already on the disk.
   */
  adopt(
    index: number,
    path: string,
    firstSequence: number,
    salt: number,
    validEnd: number,
  ): Segment {
    // Only a regular file: a FIFO's open would block, a symbolic link is never followed.
    refuseNonRegular(lstatPath(path), path, "Segment");
    const file = this.#io.openFile(path, this.openOptions(false));
    const seg: Segment = {
      index,
      path,
      file,
      firstSequence,
      salt,
      headerBlock: undefined,
      batches: 0,
      sealed: false,
      ready: true,
      error: undefined,
      prepared: Promise.resolve(),
      fill: this.fillFor(0, 0),
      // What it had laid out is not known: from its valid end on, it is laid out again.
      laidOut: Math.min(this.#options.segmentSizeBytes, Math.ceil(validEnd / 4096) * 4096),
      extending: false,
    };
    this.openSegments.add(seg);
    return seg;
  }

  /**
   * Gives a prepared segment that becomes the current one its first sequence, a fresh salt and
   * its header block (written in the chain of its first batch).
   */
  activate(seg: Segment, firstSequence: number, epoch: number, createdAtUs: number): void {
    const salt = crypto.getRandomValues(new Uint32Array(1))[0] || 1;
    seg.firstSequence = firstSequence;
    seg.salt = salt;
    const block = this.#io.allocBuffer(SEGMENT_DATA_OFFSET);
    block.fill(0);
    block.set(
      encodeSegmentHeader({
        coreId: this.#coreId,
        segmentIndex: seg.index,
        firstSequence,
        epoch,
        createdAtNs: BigInt(createdAtUs) * 1000n,
        salt,
      }),
    );
    seg.headerBlock = block;
  }

  /** Removes a prepared segment that was never started, if this process created its file. */
  discard(seg: Segment): void {
    const i = this.#deferred.indexOf(seg);
    if (i >= 0) this.#deferred.splice(i, 1);
    this.closeSegment(seg);
    if (seg.created) removeIfExists(seg.path);
  }

  /** Closes a segment's file and frees its header block (once a layout in flight settled). */
  closeSegment(seg: Segment): void {
    // A layout in flight still writes to the file: closing it now could let its descriptor be
    // reused by another file, which the zeros would then overwrite.
    if (seg.extending) {
      seg.closeWanted = true;
      return;
    }
    if (seg.headerBlock !== undefined) this.#io.freeBuffer(seg.headerBlock);
    seg.headerBlock = undefined;
    this.#io.closeFile(seg.file);
    this.openSegments.delete(seg);
  }

  /** How segment files are opened in this write mode. */
  openOptions(createNew: boolean): OpenFileOptions {
    return {
      createNew,
      direct: this.#mode !== "buffered",
      dsync: this.#mode === "dsync",
      mode: this.#options.fileMode,
    };
  }

  /** Waits until no preparation or layout is in flight, and starts no new layout (at close). */
  async settle(): Promise<void> {
    this.#settling = true;
    for (;;) {
      const busy = [...this.openSegments].filter((s) =>
        s.extending || (!s.ready && s.error === undefined)
      );
      if (busy.length === 0) return;
      await Promise.all(busy.map((s) => s.prepared));
    }
  }

  /** Frees the zero-fill buffer. */
  release(): void {
    if (this.#zeros !== undefined) this.#io.freeBuffer(this.#zeros);
    this.#zeros = undefined;
  }
}

function _asWalError(e: unknown): PerCoreWalError {
  if (e instanceof PerCoreWalError) return e;
  return new PerCoreWalError("Io", String(e), { cause: e });
}

/**
 * The error of a segment's creation, saying what is in the way when the name exists (`EEXIST`):
 * a directory, a FIFO, a file the module did not create. The code and errno stay those of the
 * failed open ("Io", EEXIST): the engine refuses the rotation as for any failed preparation.
 */
function _inTheWay(e: unknown, path: string): unknown {
  if (!(e instanceof PerCoreWalError) || e.errno !== "EEXIST") return e;
  let what = "something";
  try {
    const info = lstatIfExists(path);
    if (info !== undefined) what = entryKind(info);
  } catch {
    // Only for the message: the open's own error is the answer either way.
  }
  const kind = what === "a regular file" ? "a file this core did not create" : what;
  return new PerCoreWalError(
    e.code,
    `Cannot create segment "${path}": it exists and is ${kind} (EEXIST); the WAL creates each ` +
      `segment itself, so move it out of the WAL directory`,
    { errno: e.errno, operation: e.operation, segment: path, coreId: e.coreId, cause: e },
  );
}
