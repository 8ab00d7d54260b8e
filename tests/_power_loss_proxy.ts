// A test tool, loaded by a core Worker (the manager's `backendModule` option): an `IoBackend`
// that sends every call to the power-loss disk model on the test's main thread
// (tests/_power_loss_server.ts) through a shared buffer (tests/_power_loss_channel.ts), and the
// Worker's `DurabilityOps` (its renames, removes, cuts, fsyncs and mkdirs outside the backend:
// reopen's repairs, a segment's directory entry) the same way. Synchronous calls block the Worker
// in `Atomics.wait` until the model answers; a chain of writes completes when the model completes
// it (in the order the simulator chooses). Errors come back as this Worker's own classes (its
// `PerCoreWalError`, given by the Worker, and Deno's), so the engine handles them as real ones.
import type { BackendModuleInit } from "../src/core_worker.ts";
import type { DurabilityOps } from "../src/fs.ts";
import type {
  IoBackend,
  IoFile,
  OpenFileOptions,
  WritePart,
  WritePurpose,
  WriteSync,
} from "../src/io/backend.ts";
import {
  Chain,
  CHAIN_SLOTS,
  Channel,
  H,
  type Request,
  type Response,
} from "./_power_loss_channel.ts";

interface ProxyFile extends IoFile {
  fd: number;
}

class ProxyBackend implements IoBackend {
  /** As the model claims: the engine may use the O_DIRECT write mode's layout. */
  readonly kind = "io_uring" as const;
  readonly #ch: Channel;
  readonly #init: BackendModuleInit;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  #watching = false;

  constructor(init: BackendModuleInit) {
    this.#init = init;
    this.#ch = new Channel(init.data as SharedArrayBuffer);
  }

  /** One synchronous call: the request, then the answer (its bytes, if any). */
  call(req: Request, bytes: Uint8Array[] = []): { value: unknown; bytes: Uint8Array } {
    const hdr = this.#ch.hdr;
    this.#ch.put(req, bytes);
    const id = Atomics.add(hdr, H.REQ, 1) + 1;
    Atomics.notify(hdr, H.REQ);
    for (let r = Atomics.load(hdr, H.RESP); r !== id; r = Atomics.load(hdr, H.RESP)) {
      Atomics.wait(hdr, H.RESP, r);
    }
    const { json, bytes: out } = this.#ch.take<Response>();
    if (!json.ok) throw this.#error(json.error);
    return { value: json.value, bytes: out };
  }

  #error(e: Extract<Response, { ok: false }>["error"]): Error {
    if (e.kind === "wal") return this.#init.errorFromData(e.data);
    if (e.kind === "deno") {
      const Kind = (Deno.errors as unknown as Record<string, new (m: string) => Error>)[e.name];
      const err = Kind === undefined ? new Error(e.message) : new Kind(e.message);
      if (e.code !== undefined) (err as { code?: string }).code = e.code;
      return err;
    }
    // The process is gone (the simulated power loss): its disk answers nothing any more.
    return this.#init.errorFromData({
      code: "Io",
      errno: "EIO",
      operation: "power loss",
      message: "simulated power loss: the disk is gone",
    });
  }

  openFile(path: string, options: OpenFileOptions): IoFile {
    const fd = this.call({ op: "open", path, options: { ...options } }).value as number;
    return { path, fd } as ProxyFile;
  }

  allocate(file: IoFile, length: number): boolean {
    return this.call({ op: "allocate", fd: (file as ProxyFile).fd, length }).value as boolean;
  }

  writeParts(
    file: IoFile,
    parts: WritePart[],
    sync: WriteSync,
    purpose?: WritePurpose,
  ): Promise<void> {
    let id: number;
    try {
      id = this.call({
        op: "write",
        fd: (file as ProxyFile).fd,
        offsets: parts.map((p) => p.offset),
        lengths: parts.map((p) => p.data.length),
        sync,
        purpose,
      }, parts.map((p) => p.data)).value as number;
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#watch();
    });
  }

  /** Settles the chains whose outcome the model has set. */
  #reap(): void {
    for (const [id, p] of this.#pending) {
      const slot = id % CHAIN_SLOTS;
      const s = Atomics.load(this.#ch.chains, slot);
      if (s === Chain.PENDING) continue;
      Atomics.store(this.#ch.chains, slot, Chain.PENDING);
      this.#pending.delete(id);
      if (s === Chain.OK) p.resolve();
      else p.reject(this.#error({ kind: "dead" }));
    }
  }

  /**
   * Waits (on the event loop) for chains to complete while some are in flight. DONE is read
   * before the table: a chain completed after that read changes DONE and ends the wait.
   */
  #watch(): void {
    if (this.#watching) return;
    const seen = Atomics.load(this.#ch.hdr, H.DONE);
    this.#reap();
    if (this.#pending.size === 0) return;
    this.#watching = true;
    const w = Atomics.waitAsync(this.#ch.hdr, H.DONE, seen);
    (w.async ? w.value : Promise.resolve()).then(() => {
      this.#watching = false;
      this.#watch();
    });
  }

  readAt(file: IoFile, into: Uint8Array, offset: number): number {
    const room = this.#ch.capacity - 4096;
    let n = 0;
    while (n < into.length) {
      const length = Math.min(room, into.length - n);
      const got = this.call({ op: "read", fd: (file as ProxyFile).fd, length, offset: offset + n })
        .bytes;
      into.set(got, n);
      n += got.length;
      if (got.length < length) break;
    }
    return n;
  }

  truncate(file: IoFile, length: number): void {
    this.call({ op: "truncate", fd: (file as ProxyFile).fd, length });
  }

  closeFile(file: IoFile): void {
    this.call({ op: "closeFile", fd: (file as ProxyFile).fd });
  }

  syncDirectory(path: string): void {
    this.call({ op: "syncDirectory", path });
  }

  allocBuffer(size: number): Uint8Array {
    return new Uint8Array(size);
  }

  freeBuffer(_buffer: Uint8Array): void {}

  supportsDirect(dir: string): boolean {
    return this.call({ op: "supportsDirect", path: dir }).value as boolean;
  }

  close(): Promise<void> {
    this.#init.replaceDurabilityOps(undefined);
    return Promise.resolve();
  }

  /** The Worker's `DurabilityOps` through the model. */
  ops(): DurabilityOps {
    const op = (name: string, args: unknown[], bytes?: Uint8Array) => {
      this.call({ op: "ops", name, args }, bytes === undefined ? [] : [bytes]);
    };
    const notHere = (what: string) => () => {
      throw new Error(`power-loss proxy: a core Worker does not ${what}`);
    };
    return {
      rename: (from, to) => op("rename", [from, to]),
      remove: (path, options) => op("remove", [path, options]),
      truncate: (path, length) => op("truncate", [path, length]),
      syncFile: (path, dataOnly, readOnly) => op("syncFile", [path, dataOnly, readOnly]),
      syncDirectory: (path) => op("syncDirectory", [path]),
      writeSynced: (path, bytes, options) => op("writeSynced", [path, options], bytes),
      makeDirectory: (path, options) => op("makeDirectory", [path, options]),
      createWritable: notHere("write files in pieces"),
      createNew: notHere("create wal.lock"),
    };
  }
}

/** The `backendModule` entry point: `init.data` is the core's channel (a SharedArrayBuffer). */
export function createBackend(init: BackendModuleInit): IoBackend {
  const backend = new ProxyBackend(init);
  init.replaceDurabilityOps(backend.ops());
  return backend;
}
