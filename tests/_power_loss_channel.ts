// The channel between a core Worker's proxy backend (tests/_power_loss_proxy.ts) and the disk
// model on the test's main thread (tests/_power_loss_server.ts): one SharedArrayBuffer per core.
// A synchronous call writes its request (JSON, then its bytes) into the buffer, bumps REQ and
// blocks in `Atomics.wait` until the server has set RESP to the same number (its answer in the
// buffer); the server waits for requests with `Atomics.waitAsync`. A chain of writes (async)
// is a request answered at once with a chain id; its outcome is set later in the chain table and
// DONE is bumped, which the proxy watches with `Atomics.waitAsync`.

/** Header slots (Int32). */
export const H = {
  REQ: 0,
  RESP: 1,
  JSON_LEN: 2,
  BIN_LEN: 3,
  DONE: 4,
} as const;

const HEADER_BYTES = 64;
/** Chains in the table (by id modulo); far more than a core ever has in flight. */
export const CHAIN_SLOTS = 4096;
/** A chain's outcome in the table. */
export const Chain = { PENDING: 0, OK: 1, FAILED: 2 } as const;
const DATA_AT = HEADER_BYTES + 4 * CHAIN_SLOTS;

/** The shared buffer of one core, and views of it. */
export class Channel {
  readonly sab: SharedArrayBuffer;
  readonly hdr: Int32Array;
  readonly chains: Int32Array;
  readonly data: Uint8Array;

  /** A new channel of `bytes` (payload room about that), or a view of an existing one. */
  constructor(from: SharedArrayBuffer | number) {
    this.sab = typeof from === "number" ? new SharedArrayBuffer(DATA_AT + from) : from;
    this.hdr = new Int32Array(this.sab, 0, HEADER_BYTES / 4);
    this.chains = new Int32Array(this.sab, HEADER_BYTES, CHAIN_SLOTS);
    this.data = new Uint8Array(this.sab, DATA_AT);
  }

  /** Writes a message (JSON and bytes) into the data area. */
  put(json: unknown, bytes: Uint8Array[] = []): void {
    const text = new TextEncoder().encode(JSON.stringify(json));
    const total = text.length + bytes.reduce((n, b) => n + b.length, 0);
    if (total > this.data.length) {
      throw new Error(`power-loss channel: ${total} bytes do not fit in ${this.data.length}`);
    }
    this.data.set(text, 0);
    let at = text.length;
    for (const b of bytes) {
      this.data.set(b, at);
      at += b.length;
    }
    Atomics.store(this.hdr, H.JSON_LEN, text.length);
    Atomics.store(this.hdr, H.BIN_LEN, at - text.length);
  }

  /** Reads the message in the data area: its JSON and a copy of its bytes. */
  take<T>(): { json: T; bytes: Uint8Array } {
    const n = Atomics.load(this.hdr, H.JSON_LEN);
    const b = Atomics.load(this.hdr, H.BIN_LEN);
    const json = JSON.parse(new TextDecoder().decode(this.data.slice(0, n))) as T;
    return { json, bytes: this.data.slice(n, n + b) };
  }

  /** Payload room. */
  get capacity(): number {
    return this.data.length;
  }
}

/** An error as it crosses the channel. */
export type WireError =
  | { kind: "wal"; data: { code: string; message: string; errno?: string; operation?: string } }
  | { kind: "deno"; name: string; message: string; code?: string }
  | { kind: "dead" };

/** A request of the proxy. */
export type Request =
  | { op: "open"; path: string; options: Record<string, unknown> }
  | { op: "allocate" | "truncate"; fd: number; length: number }
  | {
    op: "write";
    fd: number;
    offsets: number[];
    lengths: number[];
    sync: boolean | "dsync";
    purpose?: string;
  }
  | { op: "read"; fd: number; length: number; offset: number }
  | { op: "closeFile"; fd: number }
  | { op: "syncDirectory"; path: string }
  | { op: "supportsDirect"; path: string }
  | { op: "ops"; name: string; args: unknown[] };

/** The server's answer. */
export type Response = { ok: true; value?: unknown } | { ok: false; error: WireError };
