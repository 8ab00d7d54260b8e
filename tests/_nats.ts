// A real nats-server for the shipping tests: started with JetStream on a free port and a
// temporary store, stopped by its process id. Without nats-server the tests are ignored (with a
// printed reason), unless REQUIRE_NATS=1, where a missing server is a failure.

/** Whether the tests must fail without nats-server (CI sets it). */
export const REQUIRE_NATS = Deno.env.get("REQUIRE_NATS") === "1";

function _findServer(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/usr/bin"])) {
    try {
      const p = `${dir}/nats-server`;
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The nats-server binary, or undefined. */
export const NATS_SERVER: string | undefined = _findServer();

/** Ignore the NATS tests: no server and not required. */
export const ignoreWithoutNats: boolean = NATS_SERVER === undefined && !REQUIRE_NATS;
if (NATS_SERVER === undefined) {
  console.error(
    REQUIRE_NATS
      ? "REQUIRE_NATS=1 but nats-server is not installed (apt-get install nats-server)"
      : "nats-server is not installed: the NATS shipping tests are ignored",
  );
}

/** A free TCP port on 127.0.0.1 (the listener is closed at once). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running nats-server. */
export class NatsServer {
  readonly port: number;
  readonly storeDir: string;
  #child: Deno.ChildProcess | undefined;

  private constructor(port: number, storeDir: string) {
    this.port = port;
    this.storeDir = storeDir;
  }

  /** The server's URL. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts a server with JetStream on `port` (default: a free one) and store `storeDir`. */
  static async start(storeDir: string, port = freePort()): Promise<NatsServer> {
    if (NATS_SERVER === undefined) throw new Error("nats-server is not installed");
    const s = new NatsServer(port, storeDir);
    await s.restart();
    return s;
  }

  /** Starts the server again on the same port and store (after `kill`). */
  async restart(): Promise<void> {
    if (this.#child !== undefined) throw new Error("nats-server is running");
    this.#child = new Deno.Command(NATS_SERVER!, {
      args: ["-js", "-a", "127.0.0.1", "-p", String(this.port), "-sd", this.storeDir],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 500; i++) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
        c.close();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await this.kill();
    throw new Error(`nats-server did not accept connections on port ${this.port}`);
  }

  /** Stops the server at once (`kill -9`), by its process id. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    try {
      Deno.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { decodeFrame } from "../src/ship/frame.ts";

/**
 * Walks every message of `stream` by stream sequence and checks the shipping property: each
 * (node, core, sequence) exactly once, each core's sequences from 1 without gap, in order, one
 * core per subject. Returns each subject's last sequence.
 */
export async function checkStream(url: string, stream: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    const last = new Map<string, number>();
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m === null) throw new Error(`stream message ${seq} is missing`);
      const f = decodeFrame(m.data);
      const core = Number(m.subject.split(".").pop());
      if (f.coreId !== core) throw new Error(`message ${seq}: core ${f.coreId} on ${m.subject}`);
      const prev = last.get(m.subject) ?? 0;
      if (f.firstSequence !== prev + 1) {
        throw new Error(
          `message ${seq} on ${m.subject}: sequences ${f.firstSequence}-${f.lastSequence} ` +
            `after ${prev} (a gap, a duplicate or out of order)`,
        );
      }
      last.set(m.subject, f.lastSequence);
    }
    return last;
  } finally {
    await nc.close();
  }
}

/**
 * Core `coreId`'s sequences in stream "WAL", in stream order, from stream sequence `from` on
 * (messages deleted from it skipped; a gap marker gives its range).
 */
export async function coreSequences(url: string, coreId: number, from = 1): Promise<number[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("WAL");
    const out: number[] = [];
    for (let seq = Math.max(from, info.state.first_seq); seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage("WAL", { seq });
      if (m === null) continue;
      const f = decodeFrame(m.data);
      if (f.coreId !== coreId) continue;
      for (let s = f.firstSequence; s <= f.lastSequence; s++) out.push(s);
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** Copies directory `from` to `to` (`cp -a`), replacing `to`: a nats-server store put back. */
export async function copyDir(from: string, to: string): Promise<void> {
  await Deno.remove(to, { recursive: true }).catch(() => {});
  const r = await new Deno.Command("cp", { args: ["-a", from, to] }).output();
  if (!r.success) throw new Error(`cp -a ${from} ${to} failed`);
}
