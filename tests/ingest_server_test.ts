// The edge-ingestion server (examples/ingest_server.ts) as a real subprocess on loopback: real
// fetch requests, real io_uring WAL underneath, read back with recovery after it stops.
import { assert, assertEquals, assertGreater, assertMatch } from "@std/assert";
import { batchRecordBytes, recoverPerCore } from "../mod.ts";
import { coreOf, encodeBinary } from "../examples/_ingest_protocol.ts";
import { ignoreWithoutUring, str, tempDir, utf8 } from "./_helpers.ts";

const SERVER = new URL("../examples/ingest_server.ts", import.meta.url).pathname;
const PERMS = [
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-env",
  "--allow-net",
  "--unstable-net",
];

/** A server subprocess; its stdout and stderr are collected in `output`. */
class Server {
  readonly url: string;
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<void>;
  readonly #out: { text: string };

  private constructor(url: string, child: Deno.ChildProcess, drained: Promise<void>, out: {
    text: string;
  }) {
    this.url = url;
    this.#child = child;
    this.#drained = drained;
    this.#out = out;
  }

  get output(): string {
    return this.#out.text;
  }

  /** Starts the server on a free port and waits for its "Listening on" line. */
  static async start(dir: string, args: string[] = []): Promise<Server> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, SERVER, "--dir", dir, "--port", "0", ...args],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = { text: "" };
    let listening!: (url: string) => void;
    let ended!: () => void;
    const url = new Promise<string>((res) => (listening = res));
    const endedEarly = new Promise<void>((res) => (ended = res));
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        out.text += chunk;
        const m = /Listening on (http:\/\/\S+)/.exec(out.text);
        if (m) listening(m[1]);
      }
    };
    const drained = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => ended());
    const first = await Promise.race([url, endedEarly.then(() => undefined)]);
    if (first === undefined) {
      await child.status;
      throw new Error(`The server exited before listening:\n${out.text}`);
    }
    return new Server(first, child, drained, out);
  }

  /** Sends `signal`, waits for the exit and the end of its output. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch {
      // Already exited.
    }
    const status = await this.#child.status;
    await this.#drained;
    return status;
  }

  /** A request; the body is always read, so nothing leaks. */
  async fetch(
    path: string,
    init: RequestInit = {},
  ): Promise<{ status: number; headers: Headers; text: string; json: () => unknown }> {
    const res = await fetch(new URL(path, this.url), init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
  }

  /** POSTs NDJSON events. */
  postEvents(events: unknown[], contentType = "application/x-ndjson") {
    const body = events.map((e) => typeof e === "string" ? e : JSON.stringify(e)).join("\n") +
      "\n";
    return this.fetch("/events", {
      method: "POST",
      body,
      headers: { "content-type": contentType },
    });
  }
}

type Ack = { count: number; sequences: Record<string, number[]> };

/** Every acknowledged key must be in the recovered state with its value's JSON text. */
async function assertRecovered(dir: string, expected: Map<string, unknown>): Promise<number> {
  using r = await recoverPerCore(`${dir}/wal`);
  for (const [k, v] of expected) {
    const got = r.state.get(k);
    if (got === undefined) throw new Error(`acknowledged key ${k} is missing after recovery`);
    assertEquals(str(got), JSON.stringify(v), `value of ${k}`);
  }
  return r.state.size;
}

async function metrics(s: Server): Promise<Map<string, number>> {
  const res = await s.fetch("/metrics");
  assertEquals(res.status, 200);
  assertMatch(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(res.text);
}

/**
 * Parses the Prometheus text format strictly enough to catch mistakes: every sample belongs to
 * a family declared by HELP and TYPE before it, and every line is well-formed.
 */
function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const types = new Map<string, string>();
  const helps = new Set<string>();
  assert(text.endsWith("\n"), "the exposition ends with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (m) {
      helps.add(m[1]);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      assert(helps.has(m[1]), `HELP before TYPE for ${m[1]}`);
      types.set(m[1], m[2]);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*",?)*\})? (\S+)$/.exec(
      line,
    );
    if (m === null) throw new Error(`malformed exposition line: ${JSON.stringify(line)}`);
    const name = m[1];
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
    assert(types.has(family), `sample ${name} has no TYPE line`);
    const value = Number(m[3] === "+Inf" ? Infinity : m[3]);
    assert(!Number.isNaN(value), `value of ${line}`);
    out.set(name + (m[2] ?? ""), value);
  }
  return out;
}

const sum = (m: Map<string, number>, prefix: string) =>
  [...m].filter(([k]) => k.startsWith(prefix + "{")).reduce((n, [, v]) => n + v, 0);

Deno.test({
  name: "POST /events (NDJSON) answers 200 once durable; every acknowledged event is in the WAL",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "2", "--workers", "2"]);
    const expected = new Map<string, unknown>();
    const perCore = new Map<string, number[]>();
    for (let r = 0; r < 10; r++) {
      const events = Array.from({ length: 8 }, (_, i) => ({
        key: `user:${r}:${i}`,
        value: { n: r * 8 + i, tags: ["a", r], nested: { ok: true } },
      }));
      const res = await s.postEvents(events);
      assertEquals(res.status, 200, res.text);
      const ack = res.json() as Ack;
      assertEquals(ack.count, 8);
      assertEquals(Object.values(ack.sequences).flat().length, 8);
      for (const [core, seqs] of Object.entries(ack.sequences)) {
        assert(core === "0" || core === "1", `core ${core}`);
        // A request's share of a core is one atomic batch: consecutive sequences.
        for (let i = 1; i < seqs.length; i++) {
          assertEquals(Number(seqs[i]), Number(seqs[i - 1]) + 1, `core ${core}: ${seqs}`);
        }
        perCore.set(core, [...(perCore.get(core) ?? []), ...seqs.map(Number)]);
      }
      for (const e of events) expected.set(e.key, e.value);
    }
    // Both cores got events (FNV-1a spreads 80 keys), each core's sequences increase.
    assertEquals(perCore.size, 2);
    for (const seqs of perCore.values()) {
      for (let i = 1; i < seqs.length; i++) assertGreater(seqs[i], seqs[i - 1]);
    }
    const status = await s.stop("SIGTERM");
    assertEquals(status.code, 0, s.output);
    assertMatch(s.output, /SIGTERM: draining and closing[\s\S]*Closed/);
    assertEquals(await assertRecovered(dir.path, expected), 80);
  },
});

Deno.test({
  name: "POST /events takes a binary batch; its values are stored byte for byte",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "2", "--workers", "1"]);
    const events = Array.from({ length: 50 }, (_, i) => ({
      key: `bin:${i}`,
      value: Uint8Array.from({ length: i * 7 }, (_, j) => (i + j * 31) & 0xff),
    }));
    const res = await s.fetch("/events", {
      method: "POST",
      body: encodeBinary(events),
      headers: { "content-type": "application/octet-stream" },
    });
    assertEquals(res.status, 200, res.text);
    assertEquals((res.json() as Ack).count, 50);
    // Malformed binary: no magic, a length running past the end, trailing garbage.
    const good = encodeBinary([{ key: "x", value: utf8("1") }]);
    for (
      const bad of [
        utf8('{"key":"x","value":1}'),
        good.subarray(0, good.length - 1),
        Uint8Array.of(...good, 1, 0),
        encodeBinary([{ key: "", value: utf8("v") }]),
      ]
    ) {
      const r = await s.fetch("/events", {
        method: "POST",
        body: bad as Uint8Array<ArrayBuffer>,
        headers: { "content-type": "application/octet-stream" },
      });
      assertEquals(r.status, 400, r.text);
      assert((r.json() as { error: string }).error.startsWith("Malformed"), r.text);
    }
    assertEquals((await s.stop()).code, 0, s.output);
    using r = await recoverPerCore(`${dir.path}/wal`);
    assertEquals(r.state.size, 50);
    for (const e of events) assertEquals(r.state.get(e.key), e.value);
    assertEquals(r.state.get("x"), undefined, "nothing of a refused request was appended");
  },
});

Deno.test({
  name: "malformed NDJSON is refused whole with 400 and a JSON error; nothing is appended",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "2", "--workers", "1"]);
    const ok = { key: "fine", value: 1 };
    const cases: [string, RegExp][] = [
      ['{"key": "a", "value": ', /line 2: invalid JSON/],
      ['{"value": 1}', /line 2: "key" is missing/],
      ['{"key": 7, "value": 1}', /line 2: "key" must be a string, got number/],
      ['{"key": null, "value": 1}', /got null/],
      ['{"key": "a"}', /line 2: "value" is missing/],
      ['{"key": "", "value": 1}', /line 2: the key is empty/],
      ['{"key": "a", "value": 1, "extra": 2}', /unknown field "extra"/],
      ["[1, 2]", /must be a JSON object/],
      ["42", /must be a JSON object/],
    ];
    for (const [line, message] of cases) {
      const res = await s.postEvents([ok, line]);
      assertEquals(res.status, 400, `${line}: ${res.text}`);
      assertEquals(res.headers.get("content-type"), "application/json");
      const body = res.json() as { error: string; message: string };
      assertEquals(body.error, "MalformedEvent");
      assertMatch(body.message, message);
    }
    const empty = await s.fetch("/events", { method: "POST", body: "\n\n" });
    assertEquals(empty.status, 400);
    assertEquals((empty.json() as { error: string }).error, "EmptyBatch");
    const badUtf8 = await s.fetch("/events", {
      method: "POST",
      body: Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d),
    });
    assertEquals(badUtf8.status, 400);
    assertMatch(badUtf8.text, /not valid UTF-8/);
    const m = await metrics(s);
    assertEquals(sum(m, "percore_wal_appends_total"), 0, "a refused request appends nothing");
    assertEquals(m.get('ingest_http_responses_total{code="400"}'), cases.length + 2);
    assertEquals((await s.stop()).code, 0, s.output);
    using r = await recoverPerCore(`${dir.path}/wal`);
    assertEquals(r.state.size, 0);
    assertEquals(r.entriesReplayed, 0);
  },
});

Deno.test({
  name: "413 for oversized bodies and events, 415, 405 with Allow, 404, and bad flags exit 2",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, [
      "--cores",
      "1",
      "--workers",
      "1",
      "--max-body-bytes",
      "4096",
      "--max-record-bytes",
      "1024",
    ]);
    // Declared by Content-Length.
    const big = await s.postEvents([{ key: "k", value: "x".repeat(5000) }]);
    assertEquals(big.status, 413);
    assertEquals((big.json() as { error: string }).error, "BodyTooLarge");
    // Streamed without a length: cut off while reading.
    const chunks = Array.from(
      { length: 10 },
      () => utf8(`{"key":"k","value":"${"y".repeat(900)}"}\n`),
    );
    const streamed = await s.fetch("/events", {
      method: "POST",
      body: ReadableStream.from(chunks),
      headers: { "content-type": "application/x-ndjson" },
    });
    assertEquals(streamed.status, 413, streamed.text);
    // One event too large for a WAL record.
    const record = await s.postEvents([{ key: "k", value: "z".repeat(2000) }]);
    assertEquals(record.status, 413);
    assertEquals((record.json() as { error: string }).error, "EventTooLarge");
    const media = await s.fetch("/events", {
      method: "POST",
      body: "a=b",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assertEquals(media.status, 415);
    const get = await s.fetch("/events");
    assertEquals(get.status, 405);
    assertEquals(get.headers.get("allow"), "POST");
    assertEquals((await s.fetch("/metrics", { method: "POST" })).status, 405);
    assertEquals((await s.fetch("/checkpoint")).status, 405);
    const missing = await s.fetch("/nope");
    assertEquals(missing.status, 404);
    assertEquals((missing.json() as { error: string }).error, "NotFound");
    // The server is still fine.
    assertEquals((await s.postEvents([{ key: "after", value: [1] }])).status, 200);
    assertEquals((await s.stop()).code, 0, s.output);
    await assertRecovered(dir.path, new Map([["after", [1]]]));

    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, SERVER, "--dir", dir.path, "--port", "http"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(bad.code, 2);
    assertMatch(str(bad.stderr), /--port must be an integer/);
  },
});

Deno.test({
  name: "GET /metrics is valid Prometheus text and counts appends, bytes and acknowledgements",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "2", "--workers", "2"]);
    let bytes = 0;
    for (let r = 0; r < 6; r++) {
      const events = Array.from({ length: 5 }, (_, i) => ({ key: `m${r}.${i}`, value: r + i }));
      const res = await s.postEvents(events);
      assertEquals(res.status, 200, res.text);
      // One atomic batch record per core the request touches, holding its puts.
      for (const core of [0, 1]) {
        const ops = events.filter((e) => coreOf(utf8(e.key), 2) === core)
          .map((e) => ({ type: "put" as const, key: e.key, value: JSON.stringify(e.value) }));
        if (ops.length > 0) bytes += batchRecordBytes(ops);
      }
    }
    await s.fetch("/nope");
    const m = await metrics(s);
    assertEquals(sum(m, "percore_wal_appends_total"), 30);
    assertEquals(sum(m, "percore_wal_appended_bytes_total"), bytes);
    assertGreater(sum(m, "percore_wal_batches_total"), 0);
    assertEquals(m.get('percore_wal_backend_info{backend="io_uring",write_mode="direct"}'), 1);
    assertEquals(m.get("ingest_events_acknowledged_total"), 30);
    assertEquals(m.get('ingest_http_responses_total{code="200"}'), 6);
    assertEquals(m.get('ingest_http_responses_total{code="404"}'), 1);
    assert(m.has('percore_wal_queue_depth{core="0"}'));
    // fdatasync latency: a histogram per core, published by the core's Worker every 20 ms.
    for (const core of ["0", "1"]) {
      const b = [...m].filter(([k]) =>
        k.startsWith(`percore_wal_fdatasync_latency_seconds_bucket{core="${core}"`)
      );
      assertEquals(b.length, 18);
      assertEquals(
        b.at(-1)![0],
        `percore_wal_fdatasync_latency_seconds_bucket{core="${core}",le="+Inf"}`,
      );
      for (let i = 1; i < b.length; i++) assert(b[i][1] >= b[i - 1][1], b[i][0]);
      const count = m.get(`percore_wal_fdatasync_latency_seconds_count{core="${core}"}`)!;
      assertEquals(b.at(-1)![1], count);
      assert(count <= m.get(`percore_wal_batches_total{core="${core}"}`)!);
      assert(m.get(`percore_wal_fdatasync_latency_seconds_sum{core="${core}"}`)! >= 0);
    }
    // The histogram: cumulative buckets, +Inf equal to _count.
    const buckets = [...m].filter(([k]) => k.startsWith("ingest_ack_latency_seconds_bucket"));
    assertEquals(buckets.at(-1)![0], 'ingest_ack_latency_seconds_bucket{le="+Inf"}');
    for (let i = 1; i < buckets.length; i++) assert(buckets[i][1] >= buckets[i - 1][1]);
    assertEquals(buckets.at(-1)![1], 6);
    assertEquals(m.get("ingest_ack_latency_seconds_count"), 6);
    assertGreater(m.get("ingest_ack_latency_seconds_sum")!, 0);
    assertEquals((await s.stop()).code, 0, s.output);
  },
});

Deno.test({
  name: "POST /checkpoint takes a checkpoint; recovery starts from it and replays what came after",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "2", "--workers", "2"]);
    const expected = new Map<string, unknown>();
    const before = Array.from({ length: 20 }, (_, i) => ({ key: `c${i}`, value: i }));
    assertEquals((await s.postEvents(before)).status, 200);
    for (const e of before) expected.set(e.key, e.value);
    const cp = await s.fetch("/checkpoint", { method: "POST" });
    assertEquals(cp.status, 200, cp.text);
    const meta = cp.json() as { id: number; stateEntries: number; walPositions: unknown[] };
    assertEquals(meta.id, 1);
    assertEquals(meta.stateEntries, 20);
    assertEquals(meta.walPositions.length, 2);
    // An overwrite and new keys after the checkpoint.
    const after = [{ key: "c0", value: "new" }, { key: "d1", value: { x: 1 } }];
    assertEquals((await s.postEvents(after)).status, 200);
    for (const e of after) expected.set(e.key, e.value);
    const m = await metrics(s);
    assertEquals(m.get("ingest_checkpoints_total"), 1);
    assertEquals((await s.stop()).code, 0, s.output);
    using r = await recoverPerCore(`${dir.path}/wal`);
    assertEquals(r.checkpoint?.id, 1);
    assertEquals(r.state.size, 21);
    for (const [k, v] of expected) assertEquals(str(r.state.get(k)!), JSON.stringify(v));
  },
});

Deno.test({
  name:
    "SIGKILL in the middle of a load: after a restart every acknowledged event is there and new requests succeed",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const args = ["--cores", "2", "--workers", "2"];
    const expected = new Map<string, unknown>();
    const s1 = await Server.start(dir.path, args);
    // Four clients post batches back to back; the server is killed while they run.
    let stop = false;
    let refused = 0;
    let checkpointed = false;
    const client = async (c: number) => {
      for (let r = 0; !stop; r++) {
        const events = Array.from({ length: 16 }, (_, i) => ({
          key: `k${c}.${r}.${i}`,
          value: { c, r, i },
        }));
        try {
          const res = await s1.postEvents(events);
          if (res.status === 200) {
            assertEquals((res.json() as Ack).count, 16);
            for (const e of events) expected.set(e.key, e.value);
          } else refused++;
          if (c === 0 && r === 5) {
            const cp = await s1.fetch("/checkpoint", { method: "POST" });
            assertEquals(cp.status, 200, cp.text);
            checkpointed = true;
          }
        } catch (e) {
          if (e instanceof TypeError) return; // The connection died with the server.
          throw e;
        }
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    const deadline = Date.now() + 60_000;
    while ((expected.size < 16 * 40 || !checkpointed) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const status = await s1.stop("SIGKILL");
    stop = true;
    await Promise.all(clients);
    assertEquals(status.signal, "SIGKILL");
    assertEquals(refused, 0);
    const acked = expected.size;
    assertGreater(acked, 16 * 40 - 1);

    const s2 = await Server.start(dir.path, args);
    assertMatch(s2.output, /Recovered .*: checkpoint 1, \d+ entries replayed, (\d+) keys/);
    const keys = Number(/ (\d+) keys/.exec(s2.output)![1]);
    assert(keys >= acked, `recovery found ${keys} keys, ${acked} were acknowledged`);
    for (let r = 0; r < 5; r++) {
      const events = Array.from({ length: 10 }, (_, i) => ({ key: `after.${r}.${i}`, value: i }));
      const res = await s2.postEvents(events);
      assertEquals(res.status, 200, res.text);
      for (const e of events) expected.set(e.key, e.value);
    }
    assertEquals((await s2.stop()).code, 0, s2.output);
    await assertRecovered(dir.path, expected);
  },
});

Deno.test({
  name:
    "a burst into a tiny shared buffer gets 503 with Retry-After and leaves nothing of the refused requests, on any core; later requests succeed",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    // 8 KiB of shared memory per core and HTTP Worker, at most 1 MiB not yet durable: the
    // core's Worker stops taking records in while an fdatasync runs, the buffer fills, and an
    // append that may not wait (--backpressure-wait-ms 0) is refused.
    const s = await Server.start(dir.path, [
      "--cores",
      "2",
      "--workers",
      "1",
      "--max-record-bytes",
      "2048",
      "--shared-buffer-bytes",
      "8192",
      "--max-pending-bytes",
      String(1024 * 1024),
      "--backpressure-wait-ms",
      "0",
      "--max-body-bytes",
      String(16 * 1024 * 1024),
    ]);
    const expected = new Map<string, unknown>();
    let refusal: { status: number; headers: Headers; text: string } | undefined;
    const refusedKeys: string[] = [];
    const value = "v".repeat(1800);
    // A request is one batch (one record) per core: each must fit --max-record-bytes, so the
    // burst is many concurrent requests of one event per core (keys "a" and "c" + suffix hash to
    // different cores for most suffixes; a request is checked whole either way).
    for (let round = 0; round < 50 && refusal === undefined; round++) {
      const results = await Promise.all(Array.from({ length: 64 }, async (_, c) => {
        const events = [{ key: `b${round}.${c}.x`, value }, { key: `b${round}.${c}.y`, value }];
        const res = await s.postEvents(events);
        if (res.status === 200) { for (const e of events) expected.set(e.key, e.value); }
        if (res.status === 503) refusedKeys.push(...events.map((e) => e.key));
        return res;
      }));
      for (const r of results) {
        assert(r.status === 200 || r.status === 503, `${r.status}: ${r.text}`);
        if (r.status === 503) refusal = r;
      }
    }
    if (refusal === undefined) throw new Error("no request was refused with 503");
    assertEquals(refusal.headers.get("retry-after"), "1");
    const body = JSON.parse(refusal.text) as { error: string; message: string };
    assertEquals(body.error, "Backpressure");
    assertMatch(body.message, /nothing of the request was appended/);
    // Once the burst is over, a request goes through.
    let later = await s.postEvents([{ key: "later", value: 1 }]);
    for (let i = 0; i < 50 && later.status === 503; i++) {
      await new Promise((r) => setTimeout(r, 100));
      later = await s.postEvents([{ key: "later", value: 1 }]);
    }
    assertEquals(later.status, 200, later.text);
    expected.set("later", 1);
    const m = await metrics(s);
    assertGreater(m.get('ingest_http_responses_total{code="503"}')!, 0);
    assertEquals((await s.stop()).code, 0, s.output);
    await assertRecovered(dir.path, expected);
    using r = await recoverPerCore(`${dir.path}/wal`);
    const left = refusedKeys.filter((k) => r.state.get(k) !== undefined);
    assertEquals(left, [], "a refused request left events in the WAL");
  },
});

Deno.test({
  name:
    "SIGTERM drains: a request still sending its body is finished and acknowledged, then exit 0",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "2", "--workers", "1"]);
    let sendRest!: () => void;
    const rest = new Promise<void>((r) => (sendRest = r));
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(utf8('{"key":"slow:1","value":1}\n'));
        await rest;
        c.enqueue(utf8('{"key":"slow:2","value":2}\n'));
        c.close();
      },
    });
    const pending = s.fetch("/events", {
      method: "POST",
      body,
      headers: { "content-type": "application/x-ndjson" },
    });
    // Let the request reach the server (headers and first line), then ask it to stop. The
    // sleep only orders the events; it is no pass/fail threshold.
    await new Promise((r) => setTimeout(r, 500));
    const stopped = s.stop("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    // While it drains, new requests are turned away with 503 and nothing of them is appended.
    const late = await s.postEvents([{ key: "late", value: 0 }]);
    assertEquals(late.status, 503, late.text);
    assertEquals((late.json() as { error: string }).error, "ShuttingDown");
    assertEquals(late.headers.get("retry-after"), "1");
    sendRest();
    const res = await pending;
    assertEquals(res.status, 200, res.text);
    assertEquals((res.json() as Ack).count, 2);
    assertEquals((await stopped).code, 0, s.output);
    assertEquals(
      await assertRecovered(dir.path, new Map<string, unknown>([["slow:1", 1], ["slow:2", 2]])),
      2,
    );
  },
});

/**
 * A raw TCP client that sends `head` at once (or, with `dripHead`, as slowly as the body) and then
 * `body` a few bytes at a time, slowly; `done` is what the server answered before closing.
 */
function dripClient(
  url: string,
  head: string,
  body: string,
  bytesPerTick: number,
  tickMs: number,
  dripHead = false,
) {
  const { hostname, port } = new URL(url);
  let stop = false;
  const done = (async () => {
    const conn = await Deno.connect({ hostname, port: Number(port) });
    const bytes = utf8(dripHead ? head + body : body);
    if (!dripHead) await conn.write(utf8(head));
    // Read whatever the server answers, until it closes the connection.
    const reading = (async () => {
      let text = "";
      const buf = new Uint8Array(4096);
      try {
        while (true) {
          const n = await conn.read(buf);
          if (n === null) break;
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
      } catch {
        // Reset by the server: as good as closed.
      }
      stop = true;
      return text;
    })();
    try {
      for (let off = 0; off < bytes.length && !stop; off += bytesPerTick) {
        await conn.write(bytes.subarray(off, Math.min(off + bytesPerTick, bytes.length)));
        await new Promise((r) => setTimeout(r, tickMs));
      }
    } catch {
      // The server closed the connection.
    }
    const answer = await reading;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    return answer;
  })();
  return { done, cancel: () => (stop = true) };
}

Deno.test({
  name:
    "SIGTERM with drip-feeding clients: the server exits within the 10 s drain bound, acknowledged events durable, the partial body never acknowledged",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "2", "--workers", "2"]);
    const expected = new Map<string, unknown>();
    const events = Array.from({ length: 40 }, (_, i) => ({ key: `ok:${i}`, value: i }));
    const res = await s.postEvents(events);
    assertEquals(res.status, 200, res.text);
    for (const e of events) expected.set(e.key, e.value);
    // Two clients send their body 4 bytes every 250 ms (a 2 KiB body would take two minutes),
    // and a third sends even its request head that slowly.
    const lines = Array.from({ length: 80 }, (_, i) => `{"key":"drip:${i}","value":${i}}\n`)
      .join("");
    const head = (n: number) =>
      `POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n` +
      `Content-Length: ${n}\r\n\r\n`;
    const drips = [
      dripClient(s.url, head(lines.length), lines, 4, 250),
      dripClient(s.url, head(lines.length), lines, 4, 250),
    ];
    // Let them send their heads and a few complete lines (the sleep orders events only).
    await new Promise((r) => setTimeout(r, 2500));
    drips.push(dripClient(s.url, head(lines.length), lines, 2, 250, true));
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    const status = await s.stop("SIGTERM");
    const seconds = (performance.now() - t0) / 1000;
    console.log(`SIGTERM with 3 drip-feeding clients: exited after ${seconds.toFixed(1)} s`);
    for (const d of drips) d.cancel();
    const answers = await Promise.all(drips.map((d) => d.done));
    assertEquals(status.code, 0, s.output);
    assert(seconds < 13, `the server took ${seconds.toFixed(1)} s to exit (bound 10 s + margin)`);
    // The two requests still receiving their body are answered 503 (nothing of them appended);
    // the connection still sending its head is closed.
    for (const a of answers.slice(0, 2)) {
      assertMatch(a, /^HTTP\/1\.1 503 [\s\S]*"error":"ShuttingDown"/);
    }
    assert(!answers[2].startsWith("HTTP/1.1 200"), answers[2]);
    assertEquals(await assertRecovered(dir.path, expected), 40);
  },
});

Deno.test({
  name:
    "ingest_http_responses_total counts /events and unknown routes only; /metrics and /checkpoint are counted by route apart",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "1", "--workers", "1"]);
    for (let r = 0; r < 3; r++) {
      assertEquals((await s.postEvents([{ key: `r${r}`, value: r }])).status, 200);
    }
    assertEquals((await s.fetch("/checkpoint", { method: "POST" })).status, 200);
    assertEquals((await s.fetch("/metrics", { method: "POST" })).status, 405);
    await metrics(s);
    await metrics(s);
    const m = await metrics(s);
    // Three scrapes, a checkpoint and a wrong method later: still the three ingestion answers.
    assertEquals(m.get('ingest_http_responses_total{code="200"}'), 3);
    assertEquals(m.get('ingest_http_responses_total{code="405"}'), 0);
    // A scrape is counted once answered: the third sees the two before it.
    assertEquals(m.get('ingest_http_admin_responses_total{route="/metrics",code="200"}'), 2);
    assertEquals(m.get('ingest_http_admin_responses_total{route="/metrics",code="405"}'), 1);
    assertEquals(m.get('ingest_http_admin_responses_total{route="/checkpoint",code="200"}'), 1);
    assertEquals((await s.stop()).code, 0, s.output);
  },
});

Deno.test({
  name:
    "batches_total counts submissions and the latency histogram completions (published every 20 ms): equal at rest, and the HELP says so",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, ["--cores", "2", "--workers", "2"]);
    await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      for (let r = 0; r < 5; r++) {
        const events = Array.from({ length: 4 }, (_, i) => ({ key: `f${c}.${r}.${i}`, value: i }));
        assertEquals((await s.postEvents(events)).status, 200);
      }
    }));
    // Every request is answered, so nothing is in flight; the latency figures are republished
    // once their 20 ms period is over (the wait orders events, it is no pass/fail threshold).
    await new Promise((r) => setTimeout(r, 100));
    const res = await s.fetch("/metrics");
    const m = parsePrometheus(res.text);
    for (const core of ["0", "1"]) {
      const batches = m.get(`percore_wal_batches_total{core="${core}"}`)!;
      assertGreater(batches, 0);
      assertEquals(m.get(`percore_wal_in_flight_batches{core="${core}"}`), 0);
      assertEquals(m.get(`percore_wal_fdatasync_latency_seconds_count{core="${core}"}`), batches);
      // Small batches are written with durable writes: none of these has an fdatasync.
      assertEquals(m.get(`percore_wal_fdatasyncs_total{core="${core}"}`), 0);
    }
    // What each counts, and why one scrape under load shows them apart, is in their HELP.
    assertMatch(res.text, /# HELP percore_wal_batches_total .*counted when submitted/);
    assertMatch(res.text, /# HELP percore_wal_fdatasyncs_total .*RWF_DSYNC/);
    assertMatch(
      res.text,
      /# HELP percore_wal_fdatasync_latency_seconds .*counted when durable.*every 20 ms/,
    );
    assertEquals((await s.stop()).code, 0, s.output);
  },
});

Deno.test({
  name: "a request whose share of a core does not fit one record gets 413 and appends nothing",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const s = await Server.start(dir.path, [
      "--cores",
      "1",
      "--workers",
      "1",
      "--max-record-bytes",
      "1024",
    ]);
    // Each event fits a record; the three together (all on core 0) do not.
    const value = "x".repeat(400);
    const res = await s.postEvents([0, 1, 2].map((i) => ({ key: `k${i}`, value })));
    assertEquals(res.status, 413, res.text);
    const body = res.json() as { error: string; message: string };
    assertEquals(body.error, "RequestTooLarge");
    assertMatch(body.message, /3 events for core 0 make a batch of \d+ bytes/);
    const ok = await s.postEvents([{ key: "small", value: 1 }]);
    assertEquals(ok.status, 200, ok.text);
    assertEquals((ok.json() as Ack).sequences, { "0": [1] });
    assertEquals((await s.stop()).code, 0, s.output);
    assertEquals(await assertRecovered(dir.path, new Map([["small", 1]])), 1);
  },
});
