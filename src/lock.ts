/**
 * The WAL directory's lock, held by whoever may change the files: a manager, or a recovery that
 * repairs. Two `flock`s, both exclusive:
 *
 * - on the directory itself (an open file description of the directory), which no one can unlink
 *   or replace while it holds segments: a second writer is refused even if `wal.lock` was deleted
 *   or swapped under the first one;
 * - on `wal.lock`, which earlier versions of the module take alone, so that they too see the
 *   directory in use.
 *
 * @module
 */

import { PerCoreWalError } from "./errors.ts";
import { createNewFile, entryKind, ioError, lstatPath, openFile } from "./fs.ts";

/** The lock file's name. */
export const LOCK_FILE = "wal.lock";

/** A held lock: release it with {@linkcode unlockWalDirectory}. */
export interface WalLock {
  /** The directory, flocked. */
  readonly directory: Deno.FsFile;
  /** `wal.lock`, flocked. */
  readonly file: Deno.FsFile;
}

/** Takes the directory's lock, or throws "Locked" if another writer holds it. */
export function lockWalDirectory(dir: string, fileMode = 0o600): WalLock {
  const path = `${dir}/${LOCK_FILE}`;
  const open = () => _openLockFile(path, fileMode);
  // wal.lock first: what another writer of any version holds, and the usual message.
  const file = _flock(dir, open, path);
  try {
    return { directory: _flock(dir, () => openFile(dir, { read: true }), dir), file };
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * Opens `wal.lock` for the flock: created if missing (`O_EXCL`, which never follows a link), else
 * only a regular file, checked by lstat before the open and by fstat after it (same inode), so
 * that a FIFO, a directory or a symbolic link in its place is refused, never opened or followed.
 */
function _openLockFile(path: string, mode: number): Deno.FsFile {
  try {
    // Through the DurabilityOps seam: a new entry, durable once the directory is fsynced.
    return createNewFile(path, mode);
  } catch (e) {
    // EEXIST (also for a FIFO or a link, dangling or not): checked below. Anything else (EACCES)
    // is the open's own error.
    if (!(e instanceof PerCoreWalError && e.errno === "EEXIST")) throw e;
  }
  const before = lstatPath(path);
  if (!before.isFile) throw _notLockable(path, entryKind(before), before.isDirectory);
  const file = openFile(path, { read: true, write: true });
  try {
    const after = file.statSync();
    if (!after.isFile || after.ino !== before.ino || after.dev !== before.dev) {
      throw _notLockable(path, "replaced while being opened", false);
    }
  } catch (e) {
    file.close();
    throw ioError(e, "fstat", path);
  }
  return file;
}

function _notLockable(path: string, why: string, directory: boolean): PerCoreWalError {
  return new PerCoreWalError(
    directory ? "Io" : "Unsafe",
    `lock file "${path}" is ${why}: only a regular file is locked; move it out of the WAL ` +
      `directory`,
    { errno: directory ? "EISDIR" : undefined, operation: "open", segment: path },
  );
}

/** Opens with `open` and flocks what it opened, or throws "Locked" (or "Io", naming `what`). */
function _flock(dir: string, open: () => Deno.FsFile, what: string): Deno.FsFile {
  let file: Deno.FsFile;
  try {
    file = open();
  } catch (e) {
    const err = ioError(e, "open", what);
    const code = err.code === "Unsafe" ? "Unsafe" : "Io";
    throw new PerCoreWalError(code, `Cannot lock WAL directory "${dir}": ${err.message}`, {
      errno: err.errno,
      operation: err.operation,
      segment: what,
      // The system's own error, as before the open went through fs.ts.
      cause: err.cause ?? e,
    });
  }
  let locked = false;
  try {
    locked = file.tryLockSync(true);
  } catch (e) {
    throw ioError(e, "flock", what);
  } finally {
    if (!locked) file.close();
  }
  if (!locked) {
    const held = what === dir ? "the directory is locked" : `lock file "${what}" is held`;
    throw new PerCoreWalError(
      "Locked",
      `WAL directory "${dir}" is in use by another writer (${held})`,
      { segment: what },
    );
  }
  return file;
}

/**
 * Opens `path` (created if missing; else only a regular file, as `wal.lock`) and flocks it
 * exclusively: the open file (close it to release), or "Locked" with `busy` as the message.
 */
export function lockFile(path: string, fileMode: number, busy: string): Deno.FsFile {
  const file = _openLockFile(path, fileMode);
  let locked = false;
  try {
    locked = file.tryLockSync(true);
  } catch (e) {
    throw ioError(e, "flock", path);
  } finally {
    if (!locked) file.close();
  }
  if (!locked) throw new PerCoreWalError("Locked", busy, { segment: path });
  return file;
}

/** Releases a lock taken by {@linkcode lockWalDirectory}. */
export function unlockWalDirectory(lock: WalLock): void {
  try {
    _unlock(lock.file, LOCK_FILE);
  } finally {
    _unlock(lock.directory, "the WAL directory");
  }
}

function _unlock(file: Deno.FsFile, what: string): void {
  try {
    file.unlockSync();
  } catch (e) {
    throw ioError(e, "unlock", what);
  } finally {
    file.close();
  }
}
