// A test tool: an I/O backend that models a disk with a volatile cache, for the power-loss
// simulator. The real files always hold what the page cache would show (every completed write);
// beside them the backend keeps, per file, the durable image (what a completed fdatasync covered)
// and the writes and size changes not yet covered. `powerLoss()` replaces each file with its
// durable image plus a seeded random subset of those pending changes (each whole, dropped, or
// torn at 512-byte sectors, in any order). Files are inodes under names: each directory keeps
// its durable entries (as of its last fsync) and the log of entry changes since (creates,
// renames, unlinks); a power loss keeps a seeded random prefix of that log, so a rename or an
// unlink not followed by a directory fsync may be undone. It also stands in for the module's
// `DurabilityOps` (src/fs.ts), so reopen's repairs, checkpoints (their state files and spill
// runs written in pieces too), `wal.json` and `wal.lock` go through the same model, and it can kill the process at its n-th operation (`crashAfter`) to cut a reopen
// repair or a checkpoint in the middle. Chains complete in an order the simulator chooses
// (seeded), or, with `auto`, in submission order on microtasks.
import { errnoError } from "../ffi/errno.ts";
import type {
  IoBackend,
  IoFile,
  OpenFileOptions,
  WritePart,
  WritePurpose,
  WriteSync,
} from "../src/io/backend.ts";
import { type DurabilityOps, readFullyAt, type WritableFile } from "../src/fs.ts";

const SECTOR = 512;

/** A change to a file; `layout`: a write of a segment's layout (zero-fill, "prepare"). */
type Op = { kind: "write"; offset: number; data: Uint8Array; layout?: boolean } | {
  kind: "size";
  length: number;
  layout?: boolean;
};

interface FileNode {
  kind: "file";
  /** What a power loss keeps for sure. */
  durable: Uint8Array;
  /** Completed changes not yet covered by an fsync. */
  pending: Op[];
}

interface DirNode {
  kind: "dir";
  /** Its entries as of its last fsync. */
  durable: Map<string, number>;
  /** Its entry changes since, in order: a power loss keeps a random prefix. */
  log: DirOp[];
}

type Node = FileNode | DirNode;

type DirOp =
  | { kind: "link"; name: string; ino: number }
  | { kind: "unlink"; name: string }
  | { kind: "rename"; from: string; to: string; ino: number };

interface SimFile extends IoFile {
  file: Deno.FsFile;
  /** Its inode (-1: outside the modelled tree, not modelled). */
  ino: number;
  closed: boolean;
  /** The power-loss epoch it was opened in: after a power loss its process is gone. */
  epoch: number;
}

interface Chain {
  file: SimFile;
  writes: Op[];
  sync: WriteSync;
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
  /** Of those, writes extending a segment's laid-out window (past its start) torn or dropped. */
  extensionLost: number;
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

/**
 * The volatile-cache disk model of the tree under `root` (files and directories as inodes; what
 * lies outside it is not modelled: its operations just happen).
 */
export class PowerLossBackend implements IoBackend {
  /** Claims io_uring so that the engine may use the O_DIRECT write mode's layout. */
  readonly kind = "io_uring" as const;
  /** Complete chains on their own, in submission order (used while a log opens). */
  auto = true;
  /** fdatasyncs completed, for assertions. */
  fdatasyncs = 0;
  /** Chains of durable (`RWF_DSYNC`) writes completed. */
  durableWriteChains = 0;
  /** Operations made through the `DurabilityOps` table (renames, removes, cuts, fsyncs...). */
  readonly fsOps = {
    rename: 0,
    remove: 0,
    truncate: 0,
    syncFile: 0,
    syncDirectory: 0,
    write: 0,
    mkdir: 0,
    /** Files written in pieces (state files, spill runs) and their fsyncs. */
    writable: 0,
    writableSync: 0,
    /** Files created with O_EXCL (`wal.lock`). */
    createNew: 0,
  };
  /** Chains of a segment's layout (zero-fill or fallocate, "prepare") submitted. */
  layoutChains = 0;
  /** Of those, chains extending a window (writing past the segment's start). */
  extensionChains = 0;
  /** The module's `DurabilityOps` (src/fs.ts) through this model: `replaceDurabilityOps(io.ops)`. */
  readonly ops: DurabilityOps = {
    rename: (from, to) => this.#rename(from, to),
    remove: (path, options) => this.#remove(path, options),
    truncate: (path, length) => this.#truncatePath(path, length),
    syncFile: (path, _dataOnly, readOnly) => this.#syncFile(path, readOnly),
    syncDirectory: (path) => this.syncDirectory(path),
    writeSynced: (path, bytes, options) => this.#writeSynced(path, bytes, options),
    makeDirectory: (path, options) => this.#makeDirectory(path, options),
    createWritable: (path, mode) => this.#createWritable(path, mode),
    createNew: (path, mode) => this.#createNew(path, mode),
  };
  readonly #root: string;
  readonly #direct: boolean;
  readonly #rand: () => number;
  #nodes = new Map<number, Node>();
  /** Every modelled path now (mirrors the real tree), to its inode. */
  #paths = new Map<string, number>();
  readonly #files = new Set<SimFile>();
  #inflight: Chain[] = [];
  #epoch = 0;
  #nextIno = 1;
  /** Operations left before the process dies (undefined: it does not). */
  #crashIn: number | undefined;
  #dead = false;

  /**
   * `direct`: report O_DIRECT support (the engine then pads batches to 4096 bytes). `root`: the
   * directory whose tree is modelled (it must exist; a power loss rewrites what is under it).
   */
  constructor(rand: () => number, direct: boolean, root: string) {
    this.#rand = rand;
    this.#direct = direct;
    this.#root = root.replace(/\/+$/, "");
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
   * allocations, truncations, renames, removes, mkdirs, fsyncs, synced writes): that one and
   * every later one throws {@linkcode SimulatedCrash} until {@linkcode powerLoss}. Undefined:
   * never.
   */
  crashAfter(n: number | undefined): void {
    this.#crashIn = n;
  }

  /** Counts an operation toward `crashAfter`; throws once the process is dead. */
  #step(): void {
    if (!this.#dead && this.#crashIn !== undefined && this.#crashIn-- <= 0) this.#dead = true;
    if (this.#dead) throw new SimulatedCrash();
  }

  #inside(path: string): boolean {
    return path === this.#root || path.startsWith(`${this.#root}/`);
  }

  #newNode(node: Node): number {
    const ino = this.#nextIno++;
    this.#nodes.set(ino, node);
    return ino;
  }

  #dir(path: string): DirNode | undefined {
    const ino = this.#know(path);
    const node = ino === undefined ? undefined : this.#nodes.get(ino);
    return node?.kind === "dir" ? node : undefined;
  }

  /**
   * The inode at `path`, learning an entry the model has not seen (written around it: durable
   * as it is, its entry durable in its directory). Undefined outside the tree or when missing.
   */
  #know(path: string): number | undefined {
    const known = this.#paths.get(path);
    if (known !== undefined) return known;
    if (!this.#inside(path)) return undefined;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch {
      return undefined;
    }
    let node: Node;
    if (info.isDirectory) node = { kind: "dir", durable: new Map(), log: [] };
    else if (info.isFile) node = { kind: "file", durable: Deno.readFileSync(path), pending: [] };
    else return undefined;
    const ino = this.#newNode(node);
    this.#paths.set(path, ino);
    if (path !== this.#root) {
      const [dir, name] = _split(path);
      this.#dir(dir)?.durable.set(name, ino);
    }
    return ino;
  }

  /** A new entry `path` for inode `ino` (logged in its directory, not durable yet). */
  #link(path: string, ino: number): void {
    const [dir, name] = _split(path);
    const d = this.#dir(dir);
    if (d === undefined) return;
    this.#paths.set(path, ino);
    d.log.push({ kind: "link", name, ino });
  }

  /** Forgets `path` and everything under it (gone from the real tree). */
  #forget(path: string): void {
    for (const p of [...this.#paths.keys()]) {
      if (p === path || p.startsWith(`${path}/`)) this.#paths.delete(p);
    }
  }

  #file(ino: number): FileNode | undefined {
    const node = this.#nodes.get(ino);
    return node?.kind === "file" ? node : undefined;
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
    let ino = o.createNew ? undefined : this.#paths.get(path);
    if (ino === undefined && this.#inside(path)) {
      ino = this.#newNode({ kind: "file", durable: new Uint8Array(0), pending: [] });
      this.#link(path, ino);
    }
    const f: SimFile = { path, file, ino: ino ?? -1, closed: false, epoch: this.#epoch };
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
    sync: WriteSync,
    purpose: WritePurpose = "data",
  ): Promise<void> {
    // An engine from before the power loss: its writes never happen, nor complete.
    if (this.#stale(file)) return new Promise<void>(() => {});
    if (this.#dead) return Promise.reject(new SimulatedCrash());
    if (purpose === "prepare") this.layoutChains++;
    if (purpose === "prepare" && parts.some((p) => p.offset > 0)) this.extensionChains++;
    const writes: Op[] = parts.map((p) => ({
      kind: "write",
      offset: p.offset,
      data: p.data.slice(),
      layout: purpose === "prepare",
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
    if (this.#dead) {
      c.reject(new SimulatedCrash());
      return;
    }
    for (const w of c.writes) this.#change(c.file, w);
    if (c.sync === "dsync") {
      // RWF_DSYNC: this chain's writes are durable (with the size they need), nothing else that
      // is pending on the file: what an fdatasync would also have covered may still be lost.
      this.durableWriteChains++;
      const node = this.#file(c.file.ino);
      if (node !== undefined) {
        node.durable = this.#image(node, c.writes, true);
        node.pending = node.pending.filter((op) => !c.writes.includes(op));
      }
    } else if (c.sync) {
      // fdatasync: everything completed on this file is now durable.
      this.fdatasyncs++;
      const node = this.#file(c.file.ino);
      if (node !== undefined) {
        node.durable = this.#image(node, node.pending, true);
        node.pending = [];
      }
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
    this.#file(f.ino)?.pending.push(op);
  }

  /**
   * The durable image of `node` with `ops` applied: all of them (`all`), or at random: a write
   * dropped, applied whole, or torn (each sector it touches applied or not); a size change kept
   * or not.
   */
  #image(node: FileNode, ops: Op[], all: boolean, report?: PowerLossReport): Uint8Array {
    let img = node.durable.slice();
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
        if (report && op.layout) report.layoutLost++;
        if (report && op.layout && op.offset > 0) report.extensionLost++;
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
      if (report && op.layout) report.layoutLost++;
      if (report && op.layout && op.offset > 0) report.extensionLost++;
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

  /**
   * fsyncs directory `path`: its entries are durable. Entries the model has not seen (written
   * around it, as a checkpoint's state file) are learned now, as they are.
   */
  syncDirectory(path: string): void {
    this.#step();
    this.fsOps.syncDirectory++;
    Deno.openSync(path, { read: true }).close();
    const d = this.#dir(path);
    if (d === undefined) return;
    for (const e of Deno.readDirSync(path)) this.#know(`${path}/${e.name}`);
    for (const op of d.log) _apply(d.durable, op);
    d.log = [];
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
    const moved = [...this.#paths].filter(([p]) => p.startsWith(`${from}/`));
    this.#forget(from);
    const replaced = this.#paths.has(to);
    this.#forget(to);
    if (ino === undefined) {
      if (replaced) this.#dir(toDir)?.log.push({ kind: "unlink", name: toName });
      return;
    }
    this.#paths.set(to, ino);
    for (const [p, i] of moved) this.#paths.set(`${to}${p.slice(from.length)}`, i);
    if (fromDir === toDir) {
      this.#dir(fromDir)?.log.push({ kind: "rename", from: fromName, to: toName, ino });
    } else {
      this.#dir(fromDir)?.log.push({ kind: "unlink", name: fromName });
      this.#dir(toDir)?.log.push({ kind: "link", name: toName, ino });
    }
  }

  #remove(path: string, options?: Deno.RemoveOptions): void {
    this.#step();
    this.fsOps.remove++;
    const ino = this.#know(path);
    Deno.removeSync(path, options);
    if (ino === undefined) return;
    // A directory removed whole: what is under it goes with its entry.
    this.#forget(path);
    const [dir, name] = _split(path);
    this.#dir(dir)?.log.push({ kind: "unlink", name });
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
    else if (this.#inside(path)) {
      this.#link(path, this.#newNode({ kind: "file", durable: bytes.slice(), pending: [] }));
    }
  }

  #makeDirectory(path: string, options?: Deno.MkdirOptions): void {
    this.#step();
    this.fsOps.mkdir++;
    // The directories that are missing, outermost first: each is a new entry of its parent.
    const missing: string[] = [];
    for (let p = path; this.#inside(p) && p !== this.#root; p = _split(p)[0]) {
      if (this.#paths.has(p) || _exists(p)) break;
      missing.unshift(p);
    }
    Deno.mkdirSync(path, options);
    for (const p of missing) {
      this.#link(p, this.#newNode({ kind: "dir", durable: new Map(), log: [] }));
    }
  }

  /**
   * A file written in pieces (a checkpoint's state file, a spill run): each write is a pending
   * change of its inode (lost, kept or torn by a power loss) until its `sync`; its entry is new
   * in its directory until the directory is fsynced.
   */
  #createWritable(path: string, mode: number): WritableFile {
    this.#step();
    this.fsOps.writable++;
    const existing = this.#know(path);
    const file = Deno.openSync(path, {
      read: true,
      write: true,
      create: true,
      truncate: true,
      mode,
    });
    let ino = existing;
    if (ino === undefined && this.#inside(path)) {
      ino = this.#newNode({ kind: "file", durable: new Uint8Array(0), pending: [] });
      this.#link(path, ino);
    } else if (ino !== undefined) {
      this.#file(ino)?.pending.push({ kind: "size", length: 0 });
    }
    const f: SimFile = { path, file, ino: ino ?? -1, closed: false, epoch: this.#epoch };
    this.#files.add(f);
    let offset = 0;
    return {
      write: (bytes) => {
        if (this.#stale(f)) throw this.#gone(f);
        if (this.#dead) throw new SimulatedCrash();
        this.#change(f, { kind: "write", offset, data: bytes.slice() });
        offset += bytes.length;
      },
      sync: () => {
        if (this.#stale(f)) throw this.#gone(f);
        this.#step();
        this.fsOps.writableSync++;
        const node = this.#file(f.ino);
        if (node === undefined) return;
        node.durable = this.#image(node, node.pending, true);
        node.pending = [];
      },
      close: () => this.closeFile(f),
    };
  }

  /** `O_EXCL` create (`wal.lock`): a new, empty entry, not durable until its directory's fsync. */
  #createNew(path: string, mode: number): Deno.FsFile {
    this.#step();
    this.fsOps.createNew++;
    const file = Deno.openSync(path, { read: true, write: true, createNew: true, mode });
    if (this.#inside(path)) {
      this.#link(path, this.#newNode({ kind: "file", durable: new Uint8Array(0), pending: [] }));
    }
    return file;
  }

  /** An fsync by path: the file as the page cache has it is durable. */
  #settleFromDisk(ino: number, path: string): void {
    const node = this.#file(ino);
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
   * each file left gets its durable image plus a random subset of its pending changes. The tree
   * under the root is rewritten so (entries the model never saw are learned first, as they are).
   */
  powerLoss(): PowerLossReport {
    const report: PowerLossReport = {
      whole: 0,
      torn: 0,
      dropped: 0,
      layoutLost: 0,
      extensionLost: 0,
      vanished: 0,
      reappeared: 0,
      dirOpsUndone: 0,
    };
    this.#epoch++;
    this.#dead = false;
    this.#crashIn = undefined;
    for (const c of this.#inflight) this.#file(c.file.ino)?.pending.push(...c.writes);
    this.#inflight = [];
    for (const f of [...this.#files]) this.closeFile(f);
    this.#learnTree(this.#root);
    const filesBefore = new Set(
      [...this.#paths].filter(([, i]) => this.#file(i) !== undefined).map(([p]) => p),
    );
    // Directories (in inode order: deterministic): a random prefix of each log survives.
    for (const node of this.#nodes.values()) {
      if (node.kind !== "dir") continue;
      const keep = node.log.length === 0 ? 0 : Math.floor(this.#rand() * (node.log.length + 1));
      report.dirOpsUndone += node.log.length - keep;
      for (const op of node.log.slice(0, keep)) _apply(node.durable, op);
      node.log = [];
    }
    // What is reachable from the root now, and each file's image (one per inode).
    const rootIno = this.#know(this.#root)!;
    const tree = new Map<string, number>();
    const walk = (path: string, ino: number) => {
      tree.set(path, ino);
      const node = this.#nodes.get(ino)!;
      if (node.kind === "dir") { for (const [n, i] of node.durable) walk(`${path}/${n}`, i); }
    };
    walk(this.#root, rootIno);
    const images = new Map<number, Uint8Array>();
    for (const ino of new Set(tree.values())) {
      const node = this.#file(ino);
      if (node === undefined) continue;
      images.set(ino, this.#image(node, _shuffle(node.pending, this.#rand), false, report));
    }
    for (const e of Deno.readDirSync(this.#root)) {
      Deno.removeSync(`${this.#root}/${e.name}`, { recursive: true });
    }
    const nodes = new Map<number, Node>();
    this.#paths = new Map();
    for (const [path, ino] of tree) {
      this.#paths.set(path, ino);
      const node = this.#nodes.get(ino)!;
      if (node.kind === "dir") {
        if (path !== this.#root) Deno.mkdirSync(path);
        nodes.set(ino, node);
      } else {
        const img = images.get(ino)!;
        Deno.writeFileSync(path, img);
        nodes.set(ino, { kind: "file", durable: img, pending: [] });
        if (!filesBefore.has(path)) report.reappeared++;
      }
    }
    for (const p of filesBefore) if (!tree.has(p)) report.vanished++;
    this.#nodes = nodes;
    return report;
  }

  /** Learns every entry under `dir` that the model has not seen. */
  #learnTree(dir: string): void {
    this.#know(dir);
    for (const e of Deno.readDirSync(dir)) {
      const path = `${dir}/${e.name}`;
      this.#know(path);
      if (e.isDirectory && !e.isSymlink) this.#learnTree(path);
    }
  }

  close(): Promise<void> {
    for (const f of [...this.#files]) this.closeFile(f);
    return Promise.resolve();
  }
}

function _exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
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
