// A test tool: an I/O backend that models a disk with a volatile cache, for the power-loss
// simulator. The real files always hold what the page cache would show (every completed write);
// beside them the backend keeps, per file, the durable image (what a completed fdatasync covered)
// and the writes and size changes not yet covered. `powerLoss()` replaces each file with its
// durable image plus a seeded random subset of those pending changes (each whole, dropped, or
// torn at 512-byte sectors, in any order) and makes unsynced directory changes vanish or
// survive at random. Chains complete in an order the simulator chooses (seeded), or, with
// `auto`, in submission order on microtasks.
import { errnoError } from "../ffi/errno.ts";
import type {
  IoBackend,
  IoFile,
  OpenFileOptions,
  WritePart,
  WritePurpose,
} from "../src/io/backend.ts";
import { readFullyAt } from "../src/fs.ts";

const SECTOR = 512;

type Op = { kind: "write"; offset: number; data: Uint8Array } | {
  kind: "size";
  length: number;
};

interface SimFile extends IoFile {
  file: Deno.FsFile;
  closed: boolean;
  /** The power-loss epoch it was opened in: after a power loss its process is gone. */
  epoch: number;
}

interface Chain {
  file: SimFile;
  writes: Op[];
  sync: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** What a power loss did, for the simulator's log. */
export interface PowerLossReport {
  /** Pending writes applied whole, torn, dropped. */
  whole: number;
  torn: number;
  dropped: number;
  /** Files whose unsynced directory entry vanished, or whose unsynced unlink was undone. */
  vanished: number;
  reappeared: number;
}

/** The volatile-cache disk model. */
export class PowerLossBackend implements IoBackend {
  /** Claims io_uring so that the engine may use the O_DIRECT write mode's layout. */
  readonly kind = "io_uring" as const;
  /** Complete chains on their own, in submission order (used while a log opens). */
  auto = true;
  /** fdatasyncs completed, for assertions. */
  fdatasyncs = 0;
  readonly #direct: boolean;
  readonly #rand: () => number;
  readonly #durable = new Map<string, Uint8Array>();
  readonly #pending = new Map<string, Op[]>();
  readonly #dirs = new Map<string, Set<string>>();
  readonly #files = new Set<SimFile>();
  #inflight: Chain[] = [];
  #epoch = 0;

  /** `direct`: report O_DIRECT support (the engine then pads batches to 4096 bytes). */
  constructor(rand: () => number, direct: boolean) {
    this.#rand = rand;
    this.#direct = direct;
  }

  /** Chains submitted and not completed. */
  get inflight(): number {
    return this.#inflight.length;
  }

  openFile(path: string, o: OpenFileOptions): IoFile {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write: true, createNew: o.createNew });
    } catch (e) {
      throw errnoError(o.createNew && e instanceof Deno.errors.AlreadyExists ? 17 : 2, "open", {
        path,
      });
    }
    if (o.createNew) {
      this.#durable.set(path, new Uint8Array(0));
      this.#pending.set(path, []);
    } else if (!this.#durable.has(path)) {
      this.#durable.set(path, Deno.readFileSync(path));
      this.#pending.set(path, []);
    }
    const f: SimFile = { path, file, closed: false, epoch: this.#epoch };
    this.#files.add(f);
    return f;
  }

  /** A file opened before the last power loss: the engine using it is gone with its process. */
  #stale(file: IoFile): boolean {
    return (file as SimFile).epoch !== this.#epoch;
  }

  #gone(file: IoFile): Error {
    return errnoError(9, "after power loss", { path: file.path });
  }

  allocate(file: IoFile, length: number): boolean {
    if (this.#stale(file)) throw this.#gone(file);
    const f = file as SimFile;
    // Modelled as fallocate: the size changes and the new range reads as zeros.
    if (f.file.statSync().size < length) this.#change(f, { kind: "size", length });
    return true;
  }

  writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: boolean,
    _purpose?: WritePurpose,
  ): Promise<void> {
    // An engine from before the power loss: its writes never happen, nor complete.
    if (this.#stale(file)) return new Promise<void>(() => {});
    const writes: Op[] = parts.map((p) => ({
      kind: "write",
      offset: p.offset,
      data: p.data.slice(),
    }));
    return new Promise<void>((resolve, reject) => {
      const c: Chain = { file: file as SimFile, writes, sync, resolve, reject };
      this.#inflight.push(c);
      if (this.auto) {
        const epoch = this.#epoch;
        queueMicrotask(() => {
          if (epoch !== this.#epoch) return;
          const i = this.#inflight.indexOf(c);
          if (i >= 0) this.#complete(this.#inflight.splice(i, 1)[0]);
        });
      }
    });
  }

  /** Completes one chain chosen by the seed; false when none is in flight. */
  completeOne(): boolean {
    if (this.#inflight.length === 0) return false;
    const i = Math.floor(this.#rand() * this.#inflight.length);
    this.#complete(this.#inflight.splice(i, 1)[0]);
    return true;
  }

  #complete(c: Chain): void {
    for (const w of c.writes) this.#change(c.file, w);
    if (c.sync) {
      // fdatasync: everything completed on this file is now durable.
      this.fdatasyncs++;
      const img = this.#image(c.file.path, this.#pending.get(c.file.path) ?? [], true);
      this.#durable.set(c.file.path, img);
      this.#pending.set(c.file.path, []);
    }
    c.resolve();
  }

  /** Applies a change to the real file (the page cache) and keeps it pending. */
  #change(f: SimFile, op: Op): void {
    if (op.kind === "write") {
      f.file.seekSync(op.offset, Deno.SeekMode.Start);
      let n = 0;
      while (n < op.data.length) n += f.file.writeSync(op.data.subarray(n));
    } else {
      f.file.truncateSync(op.length);
    }
    this.#pending.get(f.path)?.push(op);
  }

  /**
   * The durable image of `path` with `ops` applied: all of them (`all`), or at random: a write
   * dropped, applied whole, or torn (each sector it touches applied or not); a size change kept
   * or not.
   */
  #image(path: string, ops: Op[], all: boolean, report?: PowerLossReport): Uint8Array {
    let img = this.#durable.get(path) ?? new Uint8Array(0);
    const resize = (n: number) => {
      const b = new Uint8Array(n);
      b.set(img.subarray(0, Math.min(n, img.length)));
      img = b;
    };
    for (const op of ops) {
      const r = all ? 0.5 : this.#rand();
      if (op.kind === "size") {
        if (all || r < 0.5) resize(op.length);
        continue;
      }
      if (r < 1 / 3) {
        if (report) report.dropped++;
        continue;
      }
      const end = op.offset + op.data.length;
      if (end > img.length) resize(end);
      if (r < 2 / 3) {
        img.set(op.data, op.offset);
        if (report) report.whole++;
        continue;
      }
      if (report) report.torn++;
      for (let s = op.offset - (op.offset % SECTOR); s < end; s += SECTOR) {
        if (this.#rand() < 0.5) continue;
        const lo = Math.max(s, op.offset);
        const hi = Math.min(s + SECTOR, end);
        img.set(op.data.subarray(lo - op.offset, hi - op.offset), lo);
      }
    }
    return img;
  }

  readAt(file: IoFile, into: Uint8Array, offset: number): number {
    if (this.#stale(file)) throw this.#gone(file);
    return readFullyAt((file as SimFile).file, into, offset);
  }

  truncate(file: IoFile, length: number): void {
    if (this.#stale(file)) throw this.#gone(file);
    this.#change(file as SimFile, { kind: "size", length });
  }

  closeFile(file: IoFile): void {
    const f = file as SimFile;
    if (f.closed || f.file === undefined) return;
    f.closed = true;
    f.file.close();
    this.#files.delete(f);
  }

  syncDirectory(path: string): void {
    this.#dirs.set(path, _list(path));
  }

  allocBuffer(size: number): Uint8Array {
    return new Uint8Array(size);
  }

  freeBuffer(_buffer: Uint8Array): void {}

  supportsDirect(_dir: string): boolean {
    return this.#direct;
  }

  /**
   * Power loss in directory `dir`: chains in flight never complete (their writes are pending
   * too), each file gets its durable image plus a random subset of its pending changes, and
   * directory entries created or removed since the last fsync of `dir` may be undone.
   */
  powerLoss(dir: string): PowerLossReport {
    const report: PowerLossReport = { whole: 0, torn: 0, dropped: 0, vanished: 0, reappeared: 0 };
    this.#epoch++;
    for (const c of this.#inflight) this.#pending.get(c.file.path)?.push(...c.writes);
    this.#inflight = [];
    for (const f of [...this.#files]) this.closeFile(f);
    const durableNames = this.#dirs.get(dir) ?? new Set<string>();
    const present = _list(dir);
    for (const name of present) {
      const path = `${dir}/${name}`;
      if (!this.#durable.has(path)) continue;
      if (!durableNames.has(name) && this.#rand() < 0.5) {
        Deno.removeSync(path);
        report.vanished++;
        continue;
      }
      const ops = _shuffle(this.#pending.get(path) ?? [], this.#rand);
      Deno.writeFileSync(path, this.#image(path, ops, false, report));
    }
    for (const name of durableNames) {
      const path = `${dir}/${name}`;
      if (present.has(name) || !this.#durable.has(path)) continue;
      if (this.#rand() < 0.5) {
        // An unlink whose directory fsync never came: the file is back, as it was durably.
        Deno.writeFileSync(path, this.#durable.get(path)!);
        report.reappeared++;
      }
    }
    // After the power loss, what is on disk is durable.
    this.#durable.clear();
    this.#pending.clear();
    this.#dirs.set(dir, _list(dir));
    return report;
  }

  close(): Promise<void> {
    for (const f of [...this.#files]) this.closeFile(f);
    return Promise.resolve();
  }
}

function _list(dir: string): Set<string> {
  const out = new Set<string>();
  for (const e of Deno.readDirSync(dir)) if (e.isFile) out.add(e.name);
  return out;
}

function _shuffle<T>(xs: T[], rand: () => number): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
