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
  /** Names in the directory before the open (empty if it did not exist). */
  names: Set<string>;
}

/** Looks at `dir` before an open creates anything in it. */
export function footprintBefore(dir: string): OpenFootprint {
  const missingDirs: string[] = [];
  let p = dir;
  while (p !== "" && p !== "/" && p !== "." && lstatIfExists(p) === undefined) {
    missingDirs.push(p);
    const i = p.lastIndexOf("/");
    p = i < 0 ? "" : p.slice(0, i);
  }
  const names = new Set<string>();
  if (missingDirs[0] !== dir) {
    try {
      for (const e of readDirectory(dir)) names.add(e.name);
    } catch {
      // Not readable, or not a directory: the open fails on it before creating anything in it.
    }
  }
  return { dir, missingDirs, names };
}

/**
 * Removes what a failed open created: `wal.json` (and its temporary file) and `wal.lock` if they
 * were not there before, segments that were not there before and were never started (all
 * zeros: they hold no record, so no acknowledged data), then the directories it created, if they
 * are empty. Call with the lock still held for `wal.lock` (`holdsLock`): with the directory's
 * own flock held too, removing it cannot give a waiting writer a lock on an unlinked file that a
 * third one does not see. Errors while undoing are swallowed: the open's own error is what the
 * caller reports.
 */
export function undoFailedOpen(
  fp: OpenFootprint,
  config: PerCoreWalConfig,
  holdsLock: boolean,
): void {
  const dir = fp.dir;
  const isNew = (name: string) => !fp.names.has(name);
  _quietly(() => {
    for (const e of readDirectory(dir)) {
      if (!isNew(e.name) || !e.isFile) continue;
      const path = `${dir}/${e.name}`;
      if (e.name === META_FILE || e.name === `${META_FILE}.tmp`) removeIfExists(path);
      else if (e.name === LOCK_FILE) {
        if (holdsLock) removeIfExists(path);
      } else if (config.parseSegmentName(e.name) !== undefined && isUnstartedSegment(path)) {
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
