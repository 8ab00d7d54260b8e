/**
 * A failed `PerCoreWalManager.open()` creates nothing: what it found before it created anything,
 * and the undoing of what it created (`wal.json`, `wal.lock`, never-started segments, the
 * directories), and nothing else.
 *
 * @module
 */

import type { PerCoreWalConfig } from "./config.ts";
import { LOCK_FILE } from "./lock.ts";
import { lstatIfExists, readDirectory, removeIfExists } from "./fs.ts";
import { isUnstartedSegment } from "./segment_files.ts";
import { META_FILE } from "./wal_meta.ts";

/** What existed before an open created anything. */
export interface OpenFootprint {
  /** The WAL directory. */
  dir: string;
  /** The directories the open is about to create (the WAL directory and missing parents), deepest first. */
  missingDirs: string[];
  /** Names in the directory once locked, before the open wrote anything in it. */
  names: Set<string>;
  /** Whether `wal.lock` was there before the open locked the directory (it creates it). */
  lockExisted: boolean;
}

/** Looks at `dir` before an open creates it (or anything in it). */
export function footprintBefore(dir: string): OpenFootprint {
  const missingDirs: string[] = [];
  let p = dir;
  while (p !== "" && p !== "/" && p !== "." && _missing(p)) {
    missingDirs.push(p);
    const i = p.lastIndexOf("/");
    p = i < 0 ? "" : p.slice(0, i);
  }
  return { dir, missingDirs, names: new Set(), lockExisted: _lockExisted(dir, missingDirs) };
}

/** Whether nothing is at `path`; false when that cannot be told (the open reports why). */
function _missing(path: string): boolean {
  try {
    return lstatIfExists(path) === undefined;
  } catch {
    return false;
  }
}

/**
 * Whether `wal.lock` is there. Unknown (not a directory, not readable) counts as there: it is
 * then never removed, and the open reports the directory's own error.
 */
function _lockExisted(dir: string, missingDirs: string[]): boolean {
  if (missingDirs.length > 0) return false;
  try {
    return lstatIfExists(`${dir}/${LOCK_FILE}`) !== undefined;
  } catch {
    return true;
  }
}

/**
 * Records the names in the directory, once locked (before, another writer could still add
 * files that the undo would take for this open's).
 */
export function noteLockedNames(fp: OpenFootprint): void {
  for (const e of readDirectory(fp.dir)) fp.names.add(e.name);
  // The lock made it: this open's (a removal safe under the directory's flock, below).
  if (!fp.lockExisted) fp.names.delete(LOCK_FILE);
}

/**
 * Removes what a failed open created: `wal.json` (and its temporary file) and `wal.lock` if they
 * were not there before, segments that were not there before and were never started (all
 * zeros: they hold no record, so no acknowledged data). Call only with the directory locked
 * (`wal.lock` and the directory's own flock): nothing new in it is then another writer's, and
 * removing `wal.lock` cannot give a waiting writer a lock that a third one does not see (it
 * needs the directory's flock too). Errors while undoing are swallowed: the open's own error is
 * what the caller reports.
 */
export function undoFailedOpen(fp: OpenFootprint, config: PerCoreWalConfig): void {
  const dir = fp.dir;
  const isNew = (name: string) => !fp.names.has(name);
  _quietly(() => {
    for (const e of readDirectory(dir)) {
      if (!isNew(e.name) || !e.isFile) continue;
      const path = `${dir}/${e.name}`;
      if (e.name === META_FILE || e.name === `${META_FILE}.tmp`) removeIfExists(path);
      else if (e.name === LOCK_FILE) removeIfExists(path);
      else if (config.parseSegmentName(e.name) !== undefined && isUnstartedSegment(path)) {
        removeIfExists(path);
      }
    }
  });
}

/** Removes the directories an open created, deepest first, while they are empty. */
export function removeCreatedDirectories(fp: OpenFootprint): void {
  for (const d of fp.missingDirs) {
    // Not recursive: a directory that holds anything (another writer's files) stays.
    if (!_quietly(() => removeIfExists(d))) return;
  }
}

function _quietly(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch {
    return false;
  }
}
