// A test tool: serves the core Workers' proxy backends (tests/_power_loss_proxy.ts) from the
// power-loss disk model (tests/_power_loss_backend.ts) on the test's main thread, one channel per
// core (tests/_power_loss_channel.ts). `cut()` is the power loss as the Workers see it: from then
// on every call fails and no chain completes (the chains in flight are failed to the Worker, never
// applied to the model), so that nothing the Workers do afterwards reaches the model; the
// simulator then closes the manager and lets the model decide what survived.
import { errorToData } from "../src/error_data.ts";
import { PerCoreWalError } from "../src/errors.ts";
import type { IoFile, OpenFileOptions, WritePart, WritePurpose } from "../src/io/backend.ts";
import { isSimulatedCrash, type PowerLossBackend } from "./_power_loss_backend.ts";
import {
  Chain,
  CHAIN_SLOTS,
  Channel,
  H,
  type Request,
  type WireError,
} from "./_power_loss_channel.ts";

/** Payload room of each channel: more than a segment (16 or 64 KiB) laid out in one chain. */
const CHANNEL_BYTES = 4 * 1024 * 1024;

class Dead extends Error {}

export class PowerLossServer {
  readonly channels: Channel[];
  readonly #io: PowerLossBackend;
  readonly #files = new Map<number, IoFile>();
  /** Chains in flight, by channel: their ids. */
  readonly #outstanding: Set<number>[];
  #nextFd = 1;
  #nextChain = 1;
  #dead = false;
  #stopped = false;
  /** Requests left before the cut (undefined: none planned). */
  #cutIn: number | undefined;
  /** Requests served (all channels), and files they created (segments). */
  requests = 0;
  filesCreated = 0;
  readonly #serving: Promise<void>[];
  /** Deno's event loop does not count `Atomics.waitAsync`: a timer keeps it running. */
  readonly #alive = setInterval(() => {}, 60_000);

  constructor(io: PowerLossBackend, cores: number) {
    this.#io = io;
    this.channels = Array.from({ length: cores }, () => new Channel(CHANNEL_BYTES));
    this.#outstanding = this.channels.map(() => new Set());
    this.#serving = this.channels.map((ch, i) => this.#serve(ch, i));
  }

  /** Whether the power is off (a cut happened). */
  get dead(): boolean {
    return this.#dead;
  }

  /** Cuts the power right before the `n`-th next request of any Worker (undefined: never). */
  cutAfter(n: number | undefined): void {
    this.#cutIn = n;
  }

  /**
   * The power loss as the Workers see it: every later call fails, the chains in flight fail to
   * their Worker (the model keeps them pending: a power loss may keep some of their writes), and
   * the main thread's own file-system operations fail too (`crashAfter(0)` of the model).
   */
  cut(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#io.crashAfter(0);
    for (let i = 0; i < this.channels.length; i++) {
      for (const id of this.#outstanding[i]) this.#settle(i, id, false);
    }
  }

  /** Stops serving (after the manager is closed). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const ch of this.channels) Atomics.notify(ch.hdr, H.REQ);
    await Promise.all(this.#serving);
    clearInterval(this.#alive);
  }

  /** Serves channel `i` until stopped. */
  async #serve(ch: Channel, i: number): Promise<void> {
    let served = 0;
    while (!this.#stopped) {
      const req = Atomics.load(ch.hdr, H.REQ);
      if (req === served) {
        const w = Atomics.waitAsync(ch.hdr, H.REQ, served, 50);
        if (w.async) await w.value;
        continue;
      }
      served = req;
      const { json, bytes } = ch.take<Request>();
      let out: Uint8Array[] = [];
      try {
        const r = this.#handle(i, json, bytes);
        if (r instanceof Uint8Array) {
          out = [r];
          ch.put({ ok: true }, out);
        } else {
          ch.put({ ok: true, value: r }, out);
        }
      } catch (e) {
        ch.put({ ok: false, error: this.#wire(e) });
      }
      Atomics.store(ch.hdr, H.RESP, served);
      Atomics.notify(ch.hdr, H.RESP);
    }
  }

  #wire(e: unknown): WireError {
    if (e instanceof Dead || isSimulatedCrash(e)) return { kind: "dead" };
    if (e instanceof PerCoreWalError) return { kind: "wal", data: errorToData(e) };
    if (e instanceof Error && e.name in Deno.errors) {
      return {
        kind: "deno",
        name: e.name,
        message: e.message,
        code: (e as { code?: string }).code,
      };
    }
    return { kind: "wal", data: errorToData(e) };
  }

  #file(fd: number): IoFile {
    const f = this.#files.get(fd);
    if (f === undefined) throw new Error(`power-loss server: no file ${fd}`);
    return f;
  }

  /** Prints every request (debugging). */
  trace: ((line: string) => void) | undefined;

  #handle(i: number, r: Request, bytes: Uint8Array): unknown {
    this.trace?.(`core ${i}: ${JSON.stringify(r)}`);
    // Closing a file changes nothing on disk: allowed after the cut too.
    if (r.op === "closeFile") {
      const f = this.#files.get(r.fd);
      this.#files.delete(r.fd);
      if (f !== undefined) this.#io.closeFile(f);
      return undefined;
    }
    if (!this.#dead && this.#cutIn !== undefined && this.#cutIn-- <= 0) this.cut();
    if (this.#dead) throw new Dead();
    this.requests++;
    const io = this.#io;
    switch (r.op) {
      case "open": {
        const o = r.options as unknown as OpenFileOptions;
        const f = io.openFile(r.path, o);
        if (o.createNew) this.filesCreated++;
        const fd = this.#nextFd++;
        this.#files.set(fd, f);
        return fd;
      }
      case "allocate":
        return io.allocate(this.#file(r.fd), r.length);
      case "truncate":
        io.truncate(this.#file(r.fd), r.length);
        return undefined;
      case "read": {
        const into = new Uint8Array(r.length);
        return into.subarray(0, io.readAt(this.#file(r.fd), into, r.offset));
      }
      case "write": {
        const parts: WritePart[] = [];
        let at = 0;
        for (let k = 0; k < r.offsets.length; k++) {
          parts.push({ offset: r.offsets[k], data: bytes.slice(at, at + r.lengths[k]) });
          at += r.lengths[k];
        }
        const id = this.#nextChain++;
        this.#outstanding[i].add(id);
        io.writeParts(this.#file(r.fd), parts, r.sync, r.purpose as WritePurpose | undefined)
          .then(() => this.#settle(i, id, true), () => this.#settle(i, id, false));
        return id;
      }
      case "syncDirectory":
        io.syncDirectory(r.path);
        return undefined;
      case "supportsDirect":
        return io.supportsDirect(r.path);
      case "ops": {
        const a = r.args as never[];
        switch (r.name) {
          case "rename":
            return io.ops.rename(a[0], a[1]);
          case "remove":
            return io.ops.remove(a[0], a[1] ?? undefined);
          case "truncate":
            return io.ops.truncate(a[0], a[1]);
          case "syncFile":
            return io.ops.syncFile(a[0], a[1], a[2]);
          case "syncDirectory":
            return io.ops.syncDirectory(a[0]);
          case "writeSynced":
            return io.ops.writeSynced(a[0], bytes, a[1]);
          case "makeDirectory":
            return io.ops.makeDirectory(a[0], a[1] ?? undefined);
        }
        throw new Error(`power-loss server: unknown operation ${r.name}`);
      }
    }
  }

  /** Tells channel `i`'s Worker how chain `id` ended (once; never after the cut but as failed). */
  #settle(i: number, id: number, ok: boolean): void {
    if (!this.#outstanding[i].delete(id)) return;
    const ch = this.channels[i];
    Atomics.store(ch.chains, id % CHAIN_SLOTS, ok && !this.#dead ? Chain.OK : Chain.FAILED);
    Atomics.add(ch.hdr, H.DONE, 1);
    Atomics.notify(ch.hdr, H.DONE);
  }
}
