/**
 * The segment files of a WAL directory, below both the writer engine and the read side: listing a
 * core's segments, telling a never-started segment from one with data, creating the directory and
 * refusing symbolic links. Reading, merging and recovering import this module, not `core_log.ts`,
 * so they never load the engine or the io_uring binding.
 *
 * @module
 */

import { directoryMode, type PerCoreWalConfig } from "./config.ts";
import { decideTrailing } from "./damage_table.ts";
import { PerCoreWalError } from "./errors.ts";
import {
  ioError,
  isMissing,
  lstatIfExists,
  lstatPath,
  makeDirectory,
  openRegularFile,
  readDirectory,
  readFullyAt,
  readLink,
  readSome,
  refuseNonRegular,
  statPath,
  syncDirectory,
} from "./fs.ts";
import { zeroRange } from "./zero_bytes.ts";

/** Read size of the all-zeros check after its first 4 KiB: 256 KiB stays in cache (faster). */
const ZERO_CHECK_BYTES = 256 << 10;

/**
 * The segments of core `coreId` in `config.baseDir`, by index.
 *
 * Each index has one name, the one {@linkcode PerCoreWalConfig.segmentPath} gives it. A file whose
 * name reads as an index of this core but is spelled otherwise (`wal-0-0.log` for
 * `wal-0-000000.log`) is refused ("Corrupted", naming it): the WAL never writes such a name, so it
 * was copied or renamed there, and it may hold data. Reading it as that segment replays it beside
 * the real one; skipping it could hide the only copy.
 */
export function listCoreSegments(
  config: PerCoreWalConfig,
  coreId: number,
): { index: number; path: string }[] {
  const out: { index: number; path: string }[] = [];
  for (const e of readDirectory(config.baseDir)) {
    const p = config.parseSegmentName(e.name);
    if (p === undefined || p.coreId !== coreId) continue;
    const path = `${config.baseDir}/${e.name}`;
    if (e.isSymlink) refuseSymlink(path, "Segment");
    const canonical = config.segmentPath(coreId, p.segment);
    if (path !== canonical) {
      throw new PerCoreWalError(
        "Corrupted",
        `"${path}" is not a segment name of this WAL: it reads as segment ${p.segment} of core ` +
          `${coreId}, whose name is "${canonical.slice(config.baseDir.length + 1)}"; ` +
          `move it out of the WAL directory`,
        { coreId, segment: path },
      );
    }
    // A FIFO, socket, device or directory under a segment's name is refused, never skipped:
    // skipped, it would hide that the segment is gone (and a FIFO's open would block).
    if (!e.isFile) refuseNonRegular(lstatPath(path), path, "Segment");
    out.push({ index: p.segment, path });
  }
  return out.sort((a, b) => a.index - b.index);
}

/**
 * How many segments at the end of `segs` (a core's list, by index) were never started: prepared
 * ahead (all zeros), or empty with nothing laid out after them (a crash while creating them).
 * The decision table's trailing rows decide (`decideTrailing`). An empty segment before a laid-out
 * one was truncated: then none is dropped, and reading the list refuses it.
 */
export function unstartedAtEnd(segs: readonly { path: string }[]): number {
  let laterLaidOut = false;
  let n = 0;
  for (let i = segs.length - 1; i >= 0; i--) {
    const path = segs[i].path;
    const zeros = isUnstartedSegment(path);
    const empty = zeros && isEmptyFile(path);
    const d = decideTrailing({ content: empty ? "empty" : zeros ? "zeros" : "data", laterLaidOut });
    if (d.kind === "started") break;
    if (d.kind === "truncated") return 0;
    n++;
    laterLaidOut ||= !empty;
  }
  return n;
}

/** Whether any of `paths` has bytes (was laid out); a missing file has none. */
export function anyLaidOut(paths: readonly string[]): boolean {
  return paths.some((p) => !isEmptyFile(p));
}

/**
 * Whether a segment file is empty (0 bytes); a missing file counts as empty. Anything but a
 * regular file is refused ("Unsafe", or "Io" EISDIR), never measured through a link.
 */
export function isEmptyFile(path: string): boolean {
  const info = lstatIfExists(path);
  if (info === undefined) return true;
  refuseNonRegular(info, path, "Segment");
  return info.size === 0;
}

/**
 * Whether a segment file's header block holds anything (its first 64 bytes are not zero). Only a
 * regular file is opened ("Unsafe" otherwise: a FIFO's open would block).
 */
export function hasSegmentHeader(path: string): boolean {
  using f = openRegularFile(path, "Segment");
  const b = new Uint8Array(64);
  try {
    readFullyAt(f, b, 0);
  } catch (e) {
    throw ioError(e, "read", path, 0);
  }
  return b.some((x) => x !== 0);
}

/**
 * Whether a segment file is all zeros: prepared ahead and never started. Reads its header first,
 * then the rest (a zero header followed by data is damage, not an unstarted segment).
 *
 * A missing file is not unstarted (false): it holds nothing to skip, and the caller that listed
 * it finds it gone when it opens it. Any other failure is an error (`PerCoreWalError`), never
 * read as "no data"; so is anything but a regular file ("Unsafe").
 */
export function isUnstartedSegment(path: string): boolean {
  let f: Deno.FsFile;
  try {
    // Only a regular file: a FIFO's open would block, a symbolic link is never followed.
    f = openRegularFile(path, "Segment");
  } catch (e) {
    if (isMissing(e)) return false;
    throw e;
  }
  using file = f;
  let buf = new Uint8Array(4096);
  let words = new Uint32Array(buf.buffer);
  while (true) {
    const n = readSome(file, buf, path);
    if (n === null) return true;
    if (!zeroRange(buf, words, 0, n)) return false;
    if (buf.length < ZERO_CHECK_BYTES) {
      buf = new Uint8Array(ZERO_CHECK_BYTES);
      words = new Uint32Array(buf.buffer);
    }
  }
}

/**
 * Creates the WAL directory (mode from `fileMode`, and fsyncs its parent), or checks that it is a
 * directory and, unless `allowSymlinks`, not a symbolic link (the last component only).
 */
export function ensureDirectory(
  dir: string,
  options: { fileMode?: number; allowSymlinks?: boolean; what?: string } = {},
): void {
  const what = options.what ?? "WAL directory";
  try {
    if (!options.allowSymlinks) refuseSymlink(dir, what);
    if (!statPath(dir).isDirectory) {
      throw new PerCoreWalError("Io", `${what} "${dir}" is not a directory`, {
        errno: "ENOTDIR",
        segment: dir,
      });
    }
  } catch (e) {
    if (!isMissing(e)) throw e;
    makeDirectory(dir, { recursive: true, mode: directoryMode(options.fileMode ?? 0o600) });
    // The new directory's entry must survive a crash like the segments in it.
    const parent = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) || "/" : ".";
    syncDirectory(parent);
  }
}

/** Throws "Unsafe" if `path` is a symbolic link (`lstat`); other failures are "Io" errors. */
export function refuseSymlink(path: string, what: string): void {
  if (!lstatPath(path).isSymlink) return;
  let target = "?";
  try {
    target = readLink(path);
  } catch (e) {
    // Only for the message: the link may be gone already, and "Unsafe" is the answer anyway.
    if (!(e instanceof PerCoreWalError)) throw e;
  }
  throw new PerCoreWalError(
    "Unsafe",
    `${what} "${path}" is a symbolic link (to "${target}"): refused` +
      (what === "Segment" ? "; segments must be regular files" : " unless allowSymlinks is true"),
    { segment: path },
  );
}
