/**
 * The synchronous backend: `Deno.FsFile` `writeSync` + `syncDataSync`, no FFI. Used where
 * io_uring is not available, or when `backend: "sync"` is asked for. Same format, same group
 * commit in the engine; every operation completes before its promise is returned.
 *
 * @module
 */

import { PerCoreWalError } from "../errors.ts";
import { ioError, openFile, readFullyAt, syncDirectory } from "../fs.ts";
import type { IoBackend, IoFile, OpenFileOptions, WritePart, WriteSync } from "./backend.ts";

interface SyncFile extends IoFile {
  file: Deno.FsFile | undefined;
}

/** The synchronous backend. */
export class SyncBackend implements IoBackend {
  /** This is the synchronous backend. */
  readonly kind = "sync" as const;

  openFile(path: string, o: OpenFileOptions): IoFile {
    if (o.direct || o.dsync) {
      throw new PerCoreWalError(
        "Unsupported",
        "the sync backend writes through the page cache only",
      );
    }
    const file = openFile(path, { read: true, write: true, createNew: o.createNew, mode: o.mode });
    return { path, file } as SyncFile;
  }

  allocate(_file: IoFile, _length: number): boolean {
    // Deno has no fallocate: the engine's zero-fill allocates the blocks.
    return false;
  }

  writeParts(file: IoFile, parts: WritePart[], sync: WriteSync): Promise<void> {
    const f = _open(file);
    let at = 0;
    try {
      for (const p of parts) {
        at = p.offset;
        f.seekSync(p.offset, Deno.SeekMode.Start);
        let done = 0;
        while (done < p.data.length) {
          done += f.writeSync(p.data.subarray(done));
          at = p.offset + done;
        }
      }
    } catch (e) {
      return Promise.reject(ioError(e, "write", file.path, at));
    }
    // "dsync" too: Deno has no per-write durability, so the writes are made durable after.
    if (sync) {
      try {
        f.syncDataSync();
      } catch (e) {
        return Promise.reject(ioError(e, "fdatasync", file.path));
      }
    }
    return Promise.resolve();
  }

  readAt(file: IoFile, into: Uint8Array, offset: number): number {
    const f = _open(file);
    try {
      return readFullyAt(f, into, offset);
    } catch (e) {
      throw ioError(e, "read", file.path, offset);
    }
  }

  truncate(file: IoFile, length: number): void {
    try {
      _open(file).truncateSync(length);
    } catch (e) {
      throw ioError(e, "ftruncate", file.path);
    }
  }

  closeFile(file: IoFile): void {
    const f = file as SyncFile;
    f.file?.close();
    f.file = undefined;
  }

  syncDirectory(path: string): void {
    syncDirectory(path);
  }

  allocBuffer(size: number): Uint8Array {
    return new Uint8Array(size);
  }

  freeBuffer(_buffer: Uint8Array): void {}

  supportsDirect(_dir: string): boolean {
    return false;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function _open(file: IoFile): Deno.FsFile {
  const f = (file as SyncFile).file;
  if (f === undefined) throw new PerCoreWalError("Closed", `"${file.path}" is closed`);
  return f;
}
