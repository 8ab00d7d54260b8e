// A test tool: an I/O backend that models a disk with a volatile cache, for the power-loss
// simulator. The real files always hold what the page cache would show (every completed write);
// beside them the backend keeps, per file, the durable image (what a completed fdatasync covered)
// and the writes and size changes not yet covered. `powerLoss()` replaces each file with its
// durable image plus a seeded random subset of those pending changes (each whole, dropped, or
// torn at 512-byte sectors, in any order). Files are inodes under names: each directory keeps
// its durable entries (as of its last fsync) and the log of entry changes since (creates,
// renames, unlinks); a power loss keeps a seeded random prefix of that log, so a rename or an
// unlink not followed by a directory fsync may be undone. It also stands in for the module's
// `DurabilityOps` (src/fs.ts), so reopen's repairs, checkpoints and `wal.json` go through the
// same model, and it can kill the process at its n-th operation (`crashAfter`) to cut a reopen
// repair or a checkpoint in the middle. Chains complete in an order the simulator chooses
// (seeded), or, with `auto`, in submission order on microtasks.
import { errnoError } from "../ffi/errno.ts";
import type {
  IoBackend,
  IoFile,
  OpenFileOptions,
  WritePart,
  WritePurpose,
} from "../src/io/backend.ts";
import { type DurabilityOps, readFullyAt } from "../src/fs.ts";

const SECTOR = 512;

/** A change to a file; `layout`: a write of a segment's layout (zero-fill, "prepare"). */
type Op = { kind: "write"; offset: number; data: Uint8Array; layout?: boolean } | {
  kind: "size";
  length: number;
  layout?: boolean;
};

interface Inode {
  /** What a power loss keeps for sure. */
  durable: Uint8Array;
  /** Completed changes not yet covered by an fsync. */
  pending: Op[];
}

type DirOp =
  | { kind: "link"; name: string; ino: number }
  | { kind: "unlink"; name: string }
  | { kind: "rename"; from: string; to: string; ino: number };

interface SimFile extends IoFile {
  file: Deno.FsFile;
  ino: number;
  closed: boolean;
  /** The power-loss epoch it was opened in: after a power loss its process is gone. */
  epoch: number;
}

interface Chain {
  file: SimFile;
  writes: Op[];
  sync: boolean;
  purpose: WritePurpose;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** What a power loss did, for the simulator's log. */
export interface PowerLossReport {
  /** Pending writes applied whole, torn, dropped. */
  whole: number;
  torn: number;
  dropped: number;
  /** Of those, writes of a segment's layout (zero-fill, "prepare") torn or dropped. */
  layoutLost: number;
  /** Files whose unsynced directory entry vanished, or whose unsynced unlink was undone. */
  vanished: number;
  reappeared: number;
  /** Directory changes (creates, renames, unlinks) never fsynced that the power loss undid. */
  dirOpsUndone: number;
}

/** Thrown by every operation of a process that the simulator killed (`crashAfter`). */
export class SimulatedCrash extends Error {
  constructor() {
    super("simulated power loss in the middle of an operation");
  }
}

/** Whether `e` (or an error it wraps) is the simulator's crash. */
export function isSimulatedCrash(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) if (x instanceof SimulatedCrash) return true;
  return false;
}

function _split(path: string): [string, string] {
  const i = path.lastIndexOf("/");
  return [path.slice(0, i), path.slice(i + 1)];
}

/** The volatile-cache disk model. */
export class PowerLossBackend implements IoBackend {
  /** Claims io_uring so that the engine may use the O_DIRECT write mode's layout. */
  readonly kind = "io_uring" as const;
  /** Complete chains on their own, in submission order (used while a log opens). */
  auto = true;
  /** fdatasyncs completed, for assertions. */
  fdatasyncs = 0;
  /** Operations made through the `DurabilityOps` table (renames, removes, cuts, fsyncs). */
  readonly fsOps = { rename: 0, remove: 0, truncate: 0, syncFile: 0, syncDirectory: 0, write: 0 };
  /** Chains of a segment's layout (zero-fill or fallocate, "prepare") submitted. */
  layoutChains = 0;
  readonly #direct: boolean;
  readonly #rand: () => number;
  readonly #inodes = new Map<number, Inode>();
  /** Path of each file the model knows, now (mirrors the real files). */
  readonly #names = new Map<string, number>();
  /** Each directory's entries as of its last fsync. */
  #durableDirs = new Map<string, Map<string, number>>();
  /** Each directory's entry changes since its last fsync, in order. */
  readonly #dirLogs = new Map<string, DirOp[]>();
  readonly #files = new Set<SimFile>();
  #inflight: Chain[] = [];
  #epoch = 0;
  #nextIno = 1;
  /** Operations left before the process dies (undefined: it does not). */
  #crashIn: number | undefined;
  #dead = false;

  /** The module's `DurabilityOps` (src/fs.ts) through this model: `replaceDurabilityOps(io.ops)`. */
  readonly ops: DurabilityOps = {
    rename: (from, to) => this.#rename(from, to),
    remove: (path, options) => this.#remove(path, options),
    truncate: (path, length) => this.#truncatePath(path, length),
    syncFile: (path, _dataOnly, readOnly) => this.#syncFile(path, readOnly),
    syncDirectory: (path) => this.syncDirectory(path),
    writeSynced: (path, bytes, options) => this.#writeSynced(path, bytes, options),
  };

  /** `direct`: report O_DIRECT support (the engine then pads batches to 4096 bytes). */
  constructor(rand: () => number, direct: boolean) {
    this.#rand = rand;
    this.#direct = direct;
  }

  /** Chains submitted and not completed. */
  get inflight(): number {
    return this.#inflight.length;
  }

  /** Whether the process died at a `crashAfter` point (until the next power loss). */
  get crashed(): boolean {
    return this.#dead;
  }

  /**
   * Kills the process right before its `n`-th next operation (of the file system model: opens,
   * allocations, truncations, renames, removes, fsyncs, synced writes): that one and every later
   * one throws {@linkcode SimulatedCrash} until {@linkcode powerLoss}. Undefined: never.
   */
  crashAfter(n: number | undefined): void {
    this.#crashIn = n;
  }

  /** Counts an operation toward `crashAfter`; throws once the process is dead. */
  #step(): void {
    if (!this.#dead && this.#crashIn !== undefined && this.#crashIn-- <= 0) this.#dead = true;
    if (this.#dead) throw new SimulatedCrash();
  }

  #dirLog(dir: string): DirOp[] {
    let log = this.#dirLogs.get(dir);
    if (log === undefined) this.#dirLogs.set(dir, log = []);
    if (!this.#durableDirs.has(dir)) this.#durableDirs.set(dir, new Map());
    return log;
  }

  #newInode(durable: Uint8Array): number {
    const ino = this.#nextIno++;
    this.#inodes.set(ino, { durable, pending: [] });
    return ino;
  }

  /** The inode at `path`, learning a file that was there before the model saw it (durable). */
  #know(path: string): number | undefined {
    const known = this.#names.get(path);
    if (known !== undefined) return known;
    let bytes: Uint8Array;
    try {
      if (!Deno.lstatSync(path).isFile) return undefined;
      bytes = Deno.readFileSync(path);
    } catch {
      return undefined;
    }
    const ino = this.#newInode(bytes);
    this.#names.set(path, ino);
    const [dir, name] = _split(path);
    this.#dirLog(dir);
    this.#durableDirs.get(dir)!.set(name, ino);
    return ino;
  }

  #link(path: string, ino: number): void {
    const [dir, name] = _split(path);
    this.#names.set(path, ino);
    this.#dirLog(dir).push({ kind: "link", name, ino });
  }

  #unlink(path: string): void {
    if (!this.#names.delete(path)) return;
    const [dir, name] = _split(path);
    this.#dirLog(dir).push({ kind: "unlink", name });
  }

  openFile(path: string, o: OpenFileOptions): IoFile {
    this.#step();
    if (!o.createNew) this.#know(path);
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write: true, createNew: o.createNew });
    } catch (e) {
      throw errnoError(o.createNew && e instanceof Deno.errors.AlreadyExists ? 17 : 2, "open", {
        path,
      });
    }
    let ino = this.#names.get(path);
    if (o.createNew || ino === undefined) this.#link(path, ino = this.#newInode(new Uint8Array(0)));
    const f: SimFile = { path, file, ino, closed: false, epoch: this.#epoch };
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
    this.#step();
    const f = file as SimFile;
    // Modelled as fallocate: the size changes and the new range reads as zeros.
    if (f.file.statSync().size < length) this.#change(f, { kind: "size", length });
    return true;
  }

  writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: boolean,
    purpose: WritePurpose = "data",
  ): Promise<void> {
    // An engine from before the power loss: its writes never happen, nor complete.
    if (this.#stale(file)) return new Promise<void>(() => {});
    if (this.#dead) return Promise.reject(new SimulatedCrash());
    if (purpose === "prepare") this.layoutChains++;
    const writes: Op[] = parts.map((p) => ({
      kind: "write",
      offset: p.offset,
      data: p.data.slice(),
    }));
    return new Promise<void>((resolve, reject) => {
      const c: Chain = { file: file as SimFile, writes, sync, purpose, resolve, reject };
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
    if (this.#dead) {
      c.reject(new SimulatedCrash());
      return;
    }
    for (const w of c.writes) this.#change(c.file, w, c.purpose);
    if (c.sync) {
      // fdatasync: everything completed on this file is now durable.
      this.fdatasyncs++;
      this.#settle(c.file.ino);
    }
    c.resolve();
  }

  /** Everything completed on inode `ino` is durable (an fsync). */
  #settle(ino: number): void {
    const node = this.#inodes.get(ino);
    if (node === undefined) return;
    node.durable = this.#image(node, node.pending, true);
    node.pending = [];
  }

  /** Applies a change to the real file (the page cache) and keeps it pending. */
  #change(f: SimFile, op: Op, purpose: WritePurpose = "data"): void {
    if (op.kind === "write") {
      f.file.seekSync(op.offset, Deno.SeekMode.Start);
      let n = 0;
      while (n < op.data.length) n += f.file.writeSync(op.data.subarray(n));
    } else {
      f.file.truncateSync(op.length);
    }
    this.#inodes.get(f.ino)?.pending.push(purpose === "prepare" ? { ...op, layout: true } : op);
  }

  /**
   * The durable image of `node` with `ops` applied: all of them (`all`), or at random: a write
   * dropped, applied whole, or torn (each sector it touches applied or not); a size change kept
   * or not.
   */
  #image(node: Inode, ops: Op[], all: boolean, report?: PowerLossReport): Uint8Array {
    let img = node.durable;
    const resize = (n: number) => {
      const b = new Uint8Array(n);
      b.set(img.subarray(0, Math.min(n, img.length)));
      img = b;
    };
    if (!all) resize(img.length);
    for (const op of ops) {
      const r = all ? 0.5 : this.#rand();
      if (op.kind === "size") {
        if (all || r < 0.5) resize(op.length);
        continue;
      }
      const layout = (op as { layout?: boolean }).layout === true;
      if (r < 1 / 3) {
        if (report) report.dropped++;
        if (report && layout) report.layoutLost++;
        continue;
      }
      const end = op.offset + op.data.length;
      if (end > img.length) resize(end);
      else if (img === node.durable) resize(img.length);
      if (r < 2 / 3) {
        img.set(op.data, op.offset);
        if (report) report.whole++;
        continue;
      }
      if (report) report.torn++;
      if (report && layout) report.layoutLost++;
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
    this.#step();
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
    this.#step();
    this.fsOps.syncDirectory++;
    Deno.openSync(path, { read: true }).close();
    const durable = this.#durableDirs.get(path) ?? new Map<string, number>();
    for (const op of this.#dirLogs.get(path) ?? []) _apply(durable, op);
    this.#durableDirs.set(path, durable);
    this.#dirLogs.set(path, []);
  }

  // The DurabilityOps table (src/fs.ts): each does the real operation, then models it.

  #rename(from: string, to: string): void {
    this.#step();
    this.fsOps.rename++;
    const ino = this.#know(from);
    this.#know(to);
    Deno.renameSync(from, to);
    const [fromDir, fromName] = _split(from);
    const [toDir, toName] = _split(to);
    if (ino === undefined) {
      this.#unlink(to);
      return;
    }
    this.#names.delete(from);
    this.#names.set(to, ino);
    if (fromDir === toDir) {
      this.#dirLog(fromDir).push({ kind: "rename", from: fromName, to: toName, ino });
    } else {
      this.#dirLog(fromDir).push({ kind: "unlink", name: fromName });
      this.#dirLog(toDir).push({ kind: "link", name: toName, ino });
    }
  }

  #remove(path: string, options?: Deno.RemoveOptions): void {
    this.#step();
    this.fsOps.remove++;
    this.#know(path);
    Deno.removeSync(path, options);
    // A directory removed whole: the files under it are gone with it (modelled as unlinks).
    for (const p of [...this.#names.keys()]) {
      if (p === path || p.startsWith(`${path}/`)) this.#unlink(p);
    }
  }

  #truncatePath(path: string, length: number): void {
    this.#step();
    this.fsOps.truncate++;
    const ino = this.#know(path);
    {
      using f = Deno.openSync(path, { read: true, write: true });
      f.truncateSync(length);
      f.syncSync();
    }
    if (ino !== undefined) this.#settleFromDisk(ino, path);
  }

  #syncFile(path: string, readOnly: boolean): void {
    this.#step();
    this.fsOps.syncFile++;
    const ino = this.#know(path);
    Deno.openSync(path, { read: true, write: !readOnly }).close();
    if (ino !== undefined) this.#settleFromDisk(ino, path);
  }

  #writeSynced(path: string, bytes: Uint8Array, options: Deno.OpenOptions): void {
    this.#step();
    this.fsOps.write++;
    const existing = options.createNew ? undefined : this.#know(path);
    {
      using file = Deno.openSync(path, options);
      let done = 0;
      while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
    }
    if (existing !== undefined) this.#settleFromDisk(existing, path);
    else this.#link(path, this.#newInode(bytes.slice()));
  }

  /** An fsync by path: the file as the page cache has it is durable. */
  #settleFromDisk(ino: number, path: string): void {
    const node = this.#inodes.get(ino);
    if (node === undefined) return;
    node.durable = Deno.readFileSync(path);
    node.pending = [];
  }

  allocBuffer(size: number): Uint8Array {
    return new Uint8Array(size);
  }

  freeBuffer(_buffer: Uint8Array): void {}

  supportsDirect(_dir: string): boolean {
    return this.#direct;
  }

  /**
   * Power loss: chains in flight never complete (their writes are pending too); each directory
   * keeps its durable entries plus a random prefix of its entry changes since its last fsync;
   * each file left gets its durable image plus a random subset of its pending changes. Every
   * file the model knows is rewritten so. The `_dir` argument is kept for callers; every
   * directory the model saw is affected.
   */
  powerLoss(_dir?: string): PowerLossReport {
    const report: PowerLossReport = {
      whole: 0,
      torn: 0,
      dropped: 0,
      layoutLost: 0,
      vanished: 0,
      reappeared: 0,
      dirOpsUndone: 0,
    };
    this.#epoch++;
    this.#dead = false;
    this.#crashIn = undefined;
    for (const c of this.#inflight) {
      const node = this.#inodes.get(c.file.ino);
      for (const w of c.writes) {
        node?.pending.push(c.purpose === "prepare" ? { ...w, layout: true } : w);
      }
    }
    this.#inflight = [];
    for (const f of [...this.#files]) this.closeFile(f);
    const dirs = new Map<string, Map<string, number>>();
    for (const [dir, durable] of this.#durableDirs) {
      const ops = this.#dirLogs.get(dir) ?? [];
      const keep = ops.length === 0 ? 0 : Math.floor(this.#rand() * (ops.length + 1));
      report.dirOpsUndone += ops.length - keep;
      const d = new Map(durable);
      for (const op of ops.slice(0, keep)) _apply(d, op);
      dirs.set(dir, d);
    }
    const images = new Map<number, Uint8Array>();
    const imageOf = (ino: number) => {
      let img = images.get(ino);
      if (img === undefined) {
        const node = this.#inodes.get(ino)!;
        img = this.#image(node, _shuffle(node.pending, this.#rand), false, report);
        images.set(ino, img);
      }
      return img;
    };
    for (const [dir, d] of dirs) {
      const before = new Map<string, number>();
      for (const [path, ino] of this.#names) {
        const [pd, name] = _split(path);
        if (pd === dir) before.set(name, ino);
      }
      for (const name of before.keys()) {
        try {
          Deno.removeSync(`${dir}/${name}`);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
        if (d.get(name) !== before.get(name)) report.vanished++;
      }
      for (const [name, ino] of d) {
        if (before.get(name) !== ino) report.reappeared++;
        // A directory removed whole (a checkpoint's) comes back with the entries it still has.
        Deno.mkdirSync(dir, { recursive: true });
        Deno.writeFileSync(`${dir}/${name}`, imageOf(ino));
      }
    }
    // After the power loss, what is on disk is durable.
    this.#names.clear();
    this.#dirLogs.clear();
    const inodes = new Map<number, Inode>();
    for (const [dir, d] of dirs) {
      for (const [name, ino] of d) {
        this.#names.set(`${dir}/${name}`, ino);
        inodes.set(ino, { durable: imageOf(ino), pending: [] });
      }
    }
    this.#inodes.clear();
    for (const [ino, node] of inodes) this.#inodes.set(ino, node);
    this.#durableDirs = dirs;
    return report;
  }

  close(): Promise<void> {
    for (const f of [...this.#files]) this.closeFile(f);
    return Promise.resolve();
  }
}

function _apply(d: Map<string, number>, op: DirOp): void {
  if (op.kind === "link") d.set(op.name, op.ino);
  else if (op.kind === "unlink") d.delete(op.name);
  else {
    d.delete(op.from);
    d.set(op.to, op.ino);
  }
}

function _shuffle<T>(xs: T[], rand: () => number): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
