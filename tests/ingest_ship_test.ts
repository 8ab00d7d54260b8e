// The ingestion server with --ship-to and a real nats-server: the events it made durable reach the
// stream (each sequence once, in order), and /metrics reports the shipping per core.
import { assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { parseFlags } from "../examples/ingest_server.ts";
import { ignoreWithoutUring, readCore, tempDir } from "./_helpers.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { checkStream, ignoreWithoutNats, NatsServer } from "./_nats.ts";

const SERVER = new URL("../examples/ingest_server.ts", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env", "--allow-net"];

/** `name{core="c"} value` of a metrics text, per core. */
function metric(text: string, name: string, cores: number): number[] {
  return Array.from({ length: cores }, (_, c) => {
    const m = new RegExp(`^${name}\\{core="${c}"\\} (\\S+)$`, "m").exec(text);
    if (m === null) throw new Error(`no ${name} for core ${c} in:\n${text}`);
    return Number(m[1]);
  });
}

Deno.test({
  name: "ingest server --ship-to: durable events reach the stream, /metrics reports per core",
  ignore: ignoreWithoutNats || ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    await using nats = await NatsServer.start(`${dir.path}/nats`);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...PERMS,
        "--unstable-net",
        SERVER,
        "--dir",
        `${dir.path}/ingest`,
        "--port",
        "0",
        "--cores",
        "2",
        "--workers",
        "1",
        "--ship-to",
        nats.url,
        "--ship-node",
        "edge-9",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let text = "";
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) text += chunk;
    };
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
    try {
      let url: string | undefined;
      while (url === undefined) {
        const m = /Listening on (http:\/\/\S+)/.exec(text);
        if (m !== null) url = m[1];
        else {
          const st = await Promise.race([
            child.status,
            new Promise<undefined>((r) => setTimeout(() => r(undefined), 50)),
          ]);
          if (st !== undefined) throw new Error(`The server exited:\n${text}`);
        }
      }
      const body = Array.from({ length: 200 }, (_, i) => JSON.stringify({ key: `k${i}`, value: i }))
        .join("\n") + "\n";
      const r = await fetch(new URL("/events", url), { method: "POST", body });
      assertEquals(r.status, 200, await r.text());
      // Wait until both cores are shipped (bounded by the test runner, not by a timer).
      let metrics = "";
      for (;;) {
        const res = await fetch(new URL("/metrics", url));
        metrics = await res.text();
        const shipped = metric(metrics, "percore_wal_ship_shipped_sequence", 2);
        const unshipped = metric(metrics, "percore_wal_ship_unshipped_records", 2);
        if (shipped[0] + shipped[1] === 200 && unshipped.every((n) => n === 0)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assertEquals(metric(metrics, "percore_wal_ship_connected", 2), [1, 1]);
      assertEquals(metric(metrics, "percore_wal_ship_unshipped_bytes", 2), [0, 0]);
      assertEquals(metric(metrics, "percore_wal_ship_oldest_unshipped_age_seconds", 2), [0, 0]);
      assertEquals(metric(metrics, "percore_wal_ship_retries_total", 2).length, 2);
      assertStringIncludes(metrics, "# TYPE percore_wal_ship_retries_total counter");
      // The stream holds every event once, in order, per core; as many as the WAL holds.
      const last = await checkStream(nats.url, "WAL");
      const cfg = new PerCoreWalConfig(`${dir.path}/ingest/wal`, 2);
      const counts = [(await readCore(cfg, 0)).length, (await readCore(cfg, 1)).length];
      assertEquals([last.get("wal.edge-9.0") ?? 0, last.get("wal.edge-9.1") ?? 0], counts);
      assertEquals(counts[0] + counts[1], 200);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      const st = await child.status;
      await pumps;
      assertEquals(st.code, 0, text);
    }
    assertMatch(text, /Closed/);
  },
});

Deno.test("ingest server flags: --ship-* need --ship-to; defaults WAL, ingest, wal", () => {
  const f = parseFlags(["--ship-to", "nats://h:4222", "--ship-max-unshipped-records", "1000"]);
  assertEquals(f.ship, {
    to: "nats://h:4222",
    stream: "WAL",
    node: "ingest",
    subject: "wal",
    maxUnshippedRecords: 1000,
  });
  let e: unknown;
  try {
    parseFlags(["--ship-node", "n"]);
  } catch (x) {
    e = x;
  }
  assertMatch(String(e), /--ship-\* flags need --ship-to/);
  assertEquals(parseFlags([]).ship, undefined);
});
