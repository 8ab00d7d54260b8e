/**
 * The one place where the module touches the file system outside its I/O backends. Every call
 * here throws nothing but `PerCoreWalError` (code `Io`, with the operation, the path, the errno
 * name and the original error as `cause`), so that no raw `Deno.errors.*` leaves the module.
 *
 * Callers that expect a missing file ask for it explicitly (`...IfExists`, {@linkcode isMissing})
 * instead of catching everything.
 *
 * @module
 */

import { PerCoreWalError } from "./errors.ts";
import { canOpenWithoutBlocking, closeDescriptor, openReadNonBlocking } from "./io/open_read.ts";

/** Turns a Deno I/O error into a `PerCoreWalError` "Io" with the errno name when known. */
export function ioError(
  e: unknown,
  operation: string,
  path?: string,
  offset?: number,
): PerCoreWalError {
  if (e instanceof PerCoreWalError) return e;
  const errno = (e as { code?: string } | null)?.code;
  const at = path === undefined ? "" : ` on "${path}"`;
  const off = offset === undefined ? "" : ` at offset ${offset}`;
  const why = errno ?? (e instanceof Error ? e.message : String(e));
  return new PerCoreWalError("Io", `${operation} failed${at}${off}: ${why}`, {
    errno,
    operation,
    segment: path,
    offset,
    cause: e,
  });
}

/** Whether `e` (raw or wrapped by {@linkcode ioError}) says that the path does not exist. */
export function isMissing(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound ||
    (e instanceof PerCoreWalError && e.code === "Io" && e.errno === "ENOENT");
}

/**
 * The file-system operations that decide what survives a power loss (renames, removes, cuts,
 * fsyncs, synced whole-file writes), as one replaceable table. Production always uses the real
 * one; the power-loss simulator (tests/_power_loss_backend.ts) replaces it for a test so that it
 * sees every directory change and every fsync made outside the I/O backend (reopen's repairs,
 * checkpoints, `wal.json`) and can undo what was never durable. Each throws raw Deno errors; the
 * wrappers below turn them into `PerCoreWalError`.
 */
export interface DurabilityOps {
  /** `rename(2)`, replacing `to`. */
  rename(from: string, to: string): void;
  /** `unlink(2)`, or a recursive remove. */
  remove(path: string, options?: Deno.RemoveOptions): void;
  /** Cuts a file at `length` bytes, then fsyncs it. */
  truncate(path: string, length: number): void;
  /** fsyncs (or fdatasyncs, `dataOnly`) a file by path; opens it read-only when `readOnly`. */
  syncFile(path: string, dataOnly: boolean, readOnly: boolean): void;
  /** fsyncs a directory. */
  syncDirectory(path: string): void;
  /** Writes a whole file with `options` (create, truncate or createNew, mode) and fsyncs it. */
  writeSynced(path: string, bytes: Uint8Array, options: Deno.OpenOptions): void;
  /** `mkdir(2)` (with `recursive`, the missing parents too). */
  makeDirectory(path: string, options?: Deno.MkdirOptions): void;
  /**
   * Creates (or truncates) a file written in pieces (a checkpoint's state file, a spill run):
   * its writes are durable once its `sync` returned, its entry once its directory is fsynced.
   */
  createWritable(path: string, mode: number): WritableFile;
  /**
   * Creates a file that must not exist (`O_EXCL`: never follows a link) and opens it read-write
   * (`wal.lock`): its entry is durable once its directory is fsynced.
   */
  createNew(path: string, mode: number): Deno.FsFile;
  /**
   * For tests only (the real table has none): called by {@linkcode openRegularFile} and
   * {@linkcode openRegularFileAsync} between their `lstat` check and the open, where a test swaps
   * the entry (a FIFO in place of the regular file) to show that the open cannot be raced.
   */
  beforeOpenForRead?(path: string): void;
}

/** A file being written in pieces, from {@linkcode DurabilityOps.createWritable}. */
export interface WritableFile {
  /** Writes all of `bytes` after what was written. */
  write(bytes: Uint8Array): void;
  /** fsyncs the file. */
  sync(): void;
  /** Closes it (idempotent). */
  close(): void;
}

const _realOps: DurabilityOps = {
  rename: (from, to) => Deno.renameSync(from, to),
  remove: (path, options) => Deno.removeSync(path, options),
  truncate: (path, length) => {
    using f = Deno.openSync(path, { read: true, write: true });
    f.truncateSync(length);
    f.syncSync();
  },
  syncFile: (path, dataOnly, readOnly) => {
    using f = Deno.openSync(path, { read: true, write: !readOnly });
    if (dataOnly) f.syncDataSync();
    else f.syncSync();
  },
  syncDirectory: (path) => {
    using dir = Deno.openSync(path, { read: true });
    dir.syncSync();
  },
  writeSynced: (path, bytes, options) => {
    using file = Deno.openSync(path, options);
    let done = 0;
    while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
    file.syncSync();
  },
  makeDirectory: (path, options) => Deno.mkdirSync(path, options),
  createWritable: (path, mode) => {
    const file = Deno.openSync(path, { write: true, create: true, truncate: true, mode });
    let closed = false;
    return {
      write: (bytes) => {
        let done = 0;
        while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
      },
      sync: () => file.syncSync(),
      close: () => {
        if (closed) return;
        closed = true;
        file.close();
      },
    };
  },
  createNew: (path, mode) =>
    Deno.openSync(path, { read: true, write: true, createNew: true, mode }),
};

let _ops: DurabilityOps = _realOps;

/**
 * For tests only: routes the {@linkcode DurabilityOps} of this module (in this thread) through
 * `ops` (undefined: the real ones again). Returns the table in use before.
 */
export function replaceDurabilityOps(ops: DurabilityOps | undefined): DurabilityOps {
  const before = _ops;
  _ops = ops ?? _realOps;
  return before;
}

/** Runs `fn`, turning what it throws into a `PerCoreWalError` naming `operation` and `path`. */
function _io<T>(operation: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw ioError(e, operation, path);
  }
}

/** Opens a file. */
export function openFile(path: string, options: Deno.OpenOptions): Deno.FsFile {
  return _io("open", path, () => Deno.openSync(path, options));
}

/**
 * Creates (or truncates) a file to be written in pieces through the {@linkcode DurabilityOps}
 * seam; each of its calls throws `PerCoreWalError` "Io" naming `path` (and the offset written).
 */
export function createWritableFile(path: string, mode: number): WritableFile {
  const file = _io("open", path, () => _ops.createWritable(path, mode));
  let offset = 0;
  return {
    write: (bytes) => {
      try {
        file.write(bytes);
      } catch (e) {
        throw ioError(e, "write", path, offset);
      }
      offset += bytes.length;
    },
    sync: () => _io("fsync", path, () => file.sync()),
    close: () => _io("close", path, () => file.close()),
  };
}

/** Creates and opens read-write a file that must not exist (`O_EXCL`), through the seam. */
export function createNewFile(path: string, mode: number): Deno.FsFile {
  return _io("open", path, () => _ops.createNew(path, mode));
}

/** `lstat`: the entry itself, never what a symbolic link points to. */
export function lstatPath(path: string): Deno.FileInfo {
  return _io("lstat", path, () => Deno.lstatSync(path));
}

/** `lstat`, or undefined when nothing is at `path`. */
export function lstatIfExists(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw ioError(e, "lstat", path);
  }
}

/** `stat` (follows symbolic links). */
export function statPath(path: string): Deno.FileInfo {
  return _io("stat", path, () => Deno.statSync(path));
}

/** The entries of a directory. */
export function readDirectory(path: string): Deno.DirEntry[] {
  return _io("read directory", path, () => Array.from(Deno.readDirSync(path)));
}

/** Reads a whole file. */
export function readWholeFile(path: string): Uint8Array<ArrayBuffer> {
  return _io("read", path, () => Deno.readFileSync(path) as Uint8Array<ArrayBuffer>);
}

/** Removes a file (or a directory, with `recursive`). */
export function removePath(path: string, options?: Deno.RemoveOptions): void {
  _io("remove", path, () => _ops.remove(path, options));
}

/** Removes a file; false if it was not there. */
export function removeIfExists(path: string, options?: Deno.RemoveOptions): boolean {
  try {
    _ops.remove(path, options);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw ioError(e, "remove", path);
  }
}

/** Renames `from` to `to` (replacing `to` if it exists). */
export function renamePath(from: string, to: string): void {
  _io("rename", from, () => _ops.rename(from, to));
}

/** Creates a directory. */
export function makeDirectory(path: string, options?: Deno.MkdirOptions): void {
  _io("mkdir", path, () => _ops.makeDirectory(path, options));
}

/** Reads into `into` from `offset` until it is full or the file ends; returns the bytes read. */
export function readFullyAt(file: Deno.FsFile, into: Uint8Array, offset: number): number {
  file.seekSync(offset, Deno.SeekMode.Start);
  let n = 0;
  while (n < into.length) {
    const r = file.readSync(into.subarray(n));
    if (r === null) break;
    n += r;
  }
  return n;
}

/** fsyncs a directory, so that the entries created, renamed or removed in it are durable. */
export function syncDirectory(path: string): void {
  _io("fsync directory", path, () => _ops.syncDirectory(path));
}

/** fsyncs a file by path. */
export function syncFile(path: string): void {
  _io("fsync", path, () => _ops.syncFile(path, false, false));
}

/** Cuts a file at `length` bytes and fsyncs it. */
export function truncateFile(path: string, length: number): void {
  _io("ftruncate", path, () => _ops.truncate(path, length));
}

/**
 * Writes a whole file (created or truncated with `mode`) and fsyncs it; making its directory
 * entry durable is the caller's business (a rename and {@linkcode syncDirectory} usually follow).
 */
export function writeSyncedFile(path: string, bytes: Uint8Array, mode: number): void {
  _io("write", path, () => {
    _ops.writeSynced(path, bytes, { write: true, create: true, truncate: true, mode });
  });
}

/**
 * {@linkcode writeSyncedFile} for a file that must not exist yet (O_EXCL: a symbolic link or
 * anything else planted at `path` is refused, never followed or truncated).
 */
export function writeNewSyncedFile(path: string, bytes: Uint8Array, mode: number): void {
  _io("write", path, () => _ops.writeSynced(path, bytes, { write: true, createNew: true, mode }));
}

/** Runs `fn`, turning what it rejects with into a `PerCoreWalError` naming `operation`, `path`. */
async function _ioAsync<T>(operation: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw ioError(e, operation, path);
  }
}

/** Runs `fn` on a microtask: a replaced table's operation as one synchronous step. */
function _later(fn: () => void): Promise<void> {
  return Promise.resolve().then(fn);
}

/** {@linkcode writeNewSyncedFile} off the event loop. */
export function writeNewSyncedFileAsync(
  path: string,
  bytes: Uint8Array,
  mode: number,
): Promise<void> {
  // A replaced table (a test's) sees the write as one synchronous step.
  if (_ops !== _realOps) {
    return _ioAsync("write", path, () => _later(() => writeNewSyncedFile(path, bytes, mode)));
  }
  return _ioAsync("write", path, async () => {
    using file = await Deno.open(path, { write: true, createNew: true, mode });
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
    await file.sync();
  });
}

/** {@linkcode renamePath} off the event loop. */
export function renamePathAsync(from: string, to: string): Promise<void> {
  if (_ops !== _realOps) return _ioAsync("rename", from, () => _later(() => _ops.rename(from, to)));
  return _ioAsync("rename", from, () => Deno.rename(from, to));
}

/** {@linkcode syncDirectory} off the event loop. */
export function syncDirectoryAsync(path: string): Promise<void> {
  if (_ops !== _realOps) {
    return _ioAsync("fsync directory", path, () => _later(() => _ops.syncDirectory(path)));
  }
  return _ioAsync("fsync directory", path, async () => {
    using dir = await Deno.open(path, { read: true });
    await dir.sync();
  });
}

/** The target of a symbolic link. */
export function readLink(path: string): string {
  return _io("readlink", path, () => Deno.readLinkSync(path));
}

/** fdatasyncs a file by path, opened read-only (a reader may lack write permission). */
export function syncFileData(path: string): void {
  _io("fdatasync", path, () => _ops.syncFile(path, true, true));
}

/** One `read` from the file's position into `buf`: the bytes read, or null at the end. */
export function readSome(file: Deno.FsFile, buf: Uint8Array, path: string): number | null {
  return _io("read", path, () => file.readSync(buf));
}

/** What kind of entry `info` (from lstat) is, for a message. */
function _kind(info: Deno.FileInfo): string {
  if (info.isSymlink) return "a symbolic link";
  if (info.isFifo) return "a FIFO";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  return "not a regular file";
}

function _notRegular(path: string, what: string, why: string): PerCoreWalError {
  return new PerCoreWalError(
    "Unsafe",
    `${what} "${path}" is ${why}: only regular files are opened`,
    { segment: path, operation: "open" },
  );
}

/**
 * Opens for reading a file the module did not just create (`wal.json`, a checkpoint's manifest,
 * state file or snapshot, a segment, a shipper's marks), refusing anything else, without ever
 * blocking or following a link: lstat first, so that a FIFO (whose open would block forever), a
 * device, a directory or a symbolic link is normally never opened; then the open itself, which
 * cannot block or follow a link either when FFI is granted ({@linkcode _openNoBlock}), so that
 * an entry swapped in between the two is refused too; then the opened file must be the regular
 * file that lstat saw. Throws `PerCoreWalError` "Unsafe" naming `what` and the path, or "Io"
 * (ENOENT when missing, see {@linkcode isMissing}).
 */
export function openRegularFile(path: string, what: string): Deno.FsFile {
  const before = lstatPath(path);
  refuseNonRegular(before, path, what);
  _ops.beforeOpenForRead?.(path);
  const fd = _openNoBlock(path, what);
  if (fd === undefined) {
    // Without FFI: the lstat check above stands alone (docs/SECURITY.md says so).
    const file = openFile(path, { read: true });
    try {
      _sameRegularFile(before, file.statSync(), path, what);
    } catch (e) {
      file.close();
      throw ioError(e, "fstat", path);
    }
    return file;
  }
  try {
    const proc = _verifiedDescriptor(fd, before, path, what);
    return _io("open", path, () => Deno.openSync(proc, { read: true }));
  } finally {
    closeDescriptor(fd);
  }
}

/**
 * Opens `path` with {@linkcode openReadNonBlocking} where FFI is usable: the descriptor (the
 * caller closes it), or undefined without FFI. A symbolic link swapped in is "Unsafe"; other
 * failures are "Io" with the errno name (ENOENT: {@linkcode isMissing}).
 */
function _openNoBlock(path: string, what: string): number | undefined {
  if (!canOpenWithoutBlocking()) return undefined;
  try {
    return openReadNonBlocking(path);
  } catch (e) {
    // ELOOP: O_NOFOLLOW met a symbolic link.
    if (e instanceof PerCoreWalError && e.errno === "ELOOP") {
      throw _notRegular(path, what, "a symbolic link, swapped in while being opened");
    }
    throw e;
  }
}

/**
 * Checks that descriptor `fd` names the regular file that lstat saw as `before` (stat of
 * `/proc/self/fd/<fd>` follows the magic link to the opened inode, never to whatever the path
 * names now) and returns that link, which Deno can open without blocking: it is a regular file.
 */
function _verifiedDescriptor(
  fd: number,
  before: Deno.FileInfo,
  path: string,
  what: string,
): string {
  const proc = `/proc/self/fd/${fd}`;
  _sameRegularFile(before, _io("fstat", path, () => Deno.statSync(proc)), path, what);
  return proc;
}

/**
 * Reads a whole file through {@linkcode openRegularFile}: at most the size fstat gave when it was
 * opened, and at most `maxBytes` (a larger file is refused, "Corrupted"), so that no read runs on
 * without end.
 */
export function readRegularFile(
  path: string,
  what: string,
  maxBytes = Number.MAX_SAFE_INTEGER,
): Uint8Array<ArrayBuffer> {
  using file = openRegularFile(path, what);
  const size = _io("fstat", path, () => file.statSync().size);
  if (size > maxBytes) {
    throw new PerCoreWalError(
      "Corrupted",
      `${what} "${path}" has ${size} bytes, more than the ${maxBytes} it may have`,
      { segment: path },
    );
  }
  const out = new Uint8Array(size);
  const n = _io("read", path, () => readFullyAt(file, out, 0));
  return out.subarray(0, n);
}

/** What kind of entry `info` (from lstat) is, for a message: "a directory", "a FIFO" and so on. */
export function entryKind(info: Deno.FileInfo): string {
  if (info.isFile) return "a regular file";
  if (info.isDirectory) return "a directory";
  return _kind(info);
}

/**
 * Throws unless `info` (from `lstat` of `path`) is a regular file: "Unsafe" for a symbolic link,
 * a FIFO, a socket or a device, "Io" EISDIR for a directory (as {@linkcode openRegularFile}).
 */
export function refuseNonRegular(info: Deno.FileInfo, path: string, what: string): void {
  if (info.isFile) return;
  if (info.isDirectory) {
    throw new PerCoreWalError("Io", `read failed on "${path}": EISDIR (${what} is a directory)`, {
      errno: "EISDIR",
      operation: "read",
      segment: path,
    });
  }
  throw _notRegular(path, what, _kind(info));
}

/**
 * {@linkcode openRegularFile} for the async reader: lstat, refuse anything but a regular file,
 * open without blocking or following a link (with FFI), and refuse an opened file that is not the
 * regular file lstat saw (a swap between the two). Missing: "Io" ENOENT ({@linkcode isMissing}).
 */
export async function openRegularFileAsync(path: string, what: string): Promise<Deno.FsFile> {
  let before: Deno.FileInfo;
  try {
    before = await Deno.lstat(path);
  } catch (e) {
    throw ioError(e, "lstat", path);
  }
  refuseNonRegular(before, path, what);
  _ops.beforeOpenForRead?.(path);
  const fd = _openNoBlock(path, what);
  if (fd !== undefined) {
    try {
      const proc = _verifiedDescriptor(fd, before, path, what);
      return await _ioAsync("open", path, () => Deno.open(proc, { read: true }));
    } finally {
      closeDescriptor(fd);
    }
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw ioError(e, "open", path);
  }
  try {
    _sameRegularFile(before, await file.stat(), path, what);
  } catch (e) {
    file.close();
    throw ioError(e, "fstat", path);
  }
  return file;
}

/** Refuses an opened file that is not the regular file `lstat` saw at its path (swapped). */
function _sameRegularFile(
  before: Deno.FileInfo,
  after: Deno.FileInfo,
  path: string,
  what: string,
): void {
  if (!after.isFile) {
    throw _notRegular(path, what, `${entryKind(after)}, swapped in while being opened`);
  }
  if (after.ino !== before.ino || after.dev !== before.dev) {
    throw _notRegular(path, what, "replaced while being opened");
  }
}
