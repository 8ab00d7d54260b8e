/**
 * The WAL directory's lock: `wal.lock`, held with `flock` (through `FsFile.tryLockSync`) by
 * whoever may change the files: a manager, or a recovery that repairs.
 *
 * @module
 */

import { PerCoreWalError } from "./errors.ts";
import { ioError, openFile } from "./fs.ts";

/** The lock file's name. */
export const LOCK_FILE = "wal.lock";

/** Takes the directory's lock, or throws "Locked" if another writer holds it. */
export function lockWalDirectory(dir: string, fileMode = 0o600): Deno.FsFile {
  const path = `${dir}/${LOCK_FILE}`;
  let file: Deno.FsFile;
  try {
    file = openFile(path, { read: true, write: true, create: true, mode: fileMode });
  } catch (e) {
    const err = ioError(e, "open", path);
    throw new PerCoreWalError("Io", `Cannot lock WAL directory "${dir}": ${err.message}`, {
      errno: err.errno,
      operation: err.operation,
      segment: path,
      // The system's own error, as before the open went through fs.ts.
      cause: err.cause ?? e,
    });
  }
  let locked = false;
  try {
    locked = file.tryLockSync(true);
  } catch (e) {
    throw ioError(e, "flock", path);
  } finally {
    if (!locked) file.close();
  }
  if (!locked) {
    throw new PerCoreWalError(
      "Locked",
      `WAL directory "${dir}" is in use by another writer (lock file "${path}" is held)`,
      { segment: path },
    );
  }
  return file;
}

/** Releases a lock taken by {@linkcode lockWalDirectory}. */
export function unlockWalDirectory(file: Deno.FsFile): void {
  try {
    file.unlockSync();
  } catch (e) {
    throw ioError(e, "unlock", LOCK_FILE);
  } finally {
    file.close();
  }
}
