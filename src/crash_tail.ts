/**
 * The one action taken on a crash tail (see `src/damage_table.ts`), by reopen and by repair
 * alike: the later segments are put aside, last first, and the directory fsynced, before the
 * segment where the tail begins is cut (or put aside too, when the tail begins at its start). A
 * crash in the middle of it leaves the same tail for the next run to find.
 *
 * @module
 */

import { lstatIfExists, renamePath, syncDirectory, truncateFile } from "./fs.ts";

/** A name beside `path` for bytes put aside, never one in use (a rename would replace it). */
export function asideName(path: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  for (let i = 0;; i++) {
    const name = `${path}.damaged-${stamp}${i === 0 ? "" : `-${i}`}`;
    if (lstatIfExists(name) === undefined) return name;
  }
}

/**
 * Puts a crash tail aside: `later` (the core's segments after the one where the tail begins, by
 * index) renamed aside last first, then `begin` cut at `offset` (put aside whole at 0). Returns
 * the names the segments were put aside under.
 */
export function setTailAside(
  dir: string,
  begin: { path: string; offset: number },
  later: readonly { path: string }[],
): string[] {
  const aside: string[] = [];
  const move = (path: string) => {
    const to = asideName(path);
    renamePath(path, to);
    aside.push(to);
  };
  for (const s of [...later].reverse()) move(s.path);
  if (begin.offset === 0) move(begin.path);
  if (aside.length > 0) syncDirectory(dir);
  if (begin.offset > 0) truncateFile(begin.path, begin.offset);
  return aside;
}
