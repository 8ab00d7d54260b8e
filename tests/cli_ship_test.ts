// `wal ship` and `wal ship-status` with a real nats-server: --once ships every durable entry
// (each sequence once, in order), ship-status reports each core's lag in records, a run without
// --once ships until SIGTERM and closes with exit 0, and usage errors exit 2.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { ShipMarks } from "../src/ship_marks.ts";
import { ignoreWithoutUring, readCore, runDeno, tempDir } from "./_helpers.ts";
import { checkStream, ignoreWithoutNats, NatsServer } from "./_nats.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env", "--allow-net"];
const ignore = ignoreWithoutNats || ignoreWithoutUring;

function config(walDir: string) {
  return new PerCoreWalConfig(walDir, 2, { segmentSizeBytes: 64 * 1024 });
}

/** Appends `n` puts per core (and a batch on core 1), synced; returns nothing. */
async function append(walDir: string, n: number, tag: string, cores = [0, 1]): Promise<void> {
  await using m = await PerCoreWalManager.open(config(walDir));
  for (const c of cores) {
    for (let i = 0; i < n; i++) m.writer(c).appendPut(`${tag}-${c}-${i}`, "v".repeat(40));
  }
  if (cores.includes(1)) {
    m.writer(1).appendBatch([{ type: "put", key: `${tag}-b`, value: "x" }, {
      type: "commit",
      offsets: { src: n },
      watermark: n,
    }]);
  }
  await m.syncAll();
}

function wal(args: string[]) {
  return runDeno(["run", ...PERMS, CLI, ...args], 120_000);
}

Deno.test({
  name: "wal ship --once ships every durable entry, once and in order, and exits 0",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const walDir = `${dir.path}/wal`;
    await append(walDir, 300, "a");
    const common = ["--server", server.url, "--stream", "WAL", "--node", "n1"];
    const r = await wal(["ship", walDir, ...common, "--once", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const cfg = config(walDir);
    const counts = [(await readCore(cfg, 0)).length, (await readCore(cfg, 1)).length];
    assertEquals(counts, [300, 302]);
    assertEquals(lines.map((l) => [l.coreId, l.lastShippedSequence]), [[0, 300], [1, 302]]);
    const last = await checkStream(server.url, "WAL");
    assertEquals([last.get("wal.n1.0"), last.get("wal.n1.1")], counts);
    // Again after more appends: it resumes after what the stream holds, nothing twice.
    await append(walDir, 50, "b", [0]);
    const again = await wal(["ship", walDir, ...common, "--once"]);
    assertEquals(again.code, 0, again.stderr);
    assertStringIncludes(again.stdout, "core 0 (wal.n1.0): shipped up to 350");
    const after = await checkStream(server.url, "WAL");
    assertEquals([after.get("wal.n1.0"), after.get("wal.n1.1")], [350, 302]);
  },
});

Deno.test({
  name: "wal ship-status gives per core the stream's last sequence, the WAL's, and the lag",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const walDir = `${dir.path}/wal`;
    await append(walDir, 20, "a");
    const common = [
      "--server",
      server.url,
      "--stream",
      "S1",
      "--node",
      "edge-2",
      "--subject",
      "x.y",
    ];
    assertEquals((await wal(["ship", walDir, ...common, "--once"])).code, 0);
    await append(walDir, 7, "b", [0]);
    const r = await wal(["ship-status", walDir, ...common, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(
      lines.map((l) => [l.subject, l.streamLastSequence, l.walLastSequence, l.lagRecords]),
      [["x.y.edge-2.0", 20, 27, 7], ["x.y.edge-2.1", 22, 22, 0]],
    );
    assert(lines.every((l) => l.streamSequence > 0));
    const text = await wal(["ship-status", walDir, ...common]);
    assertEquals(text.code, 0, text.stderr);
    assertStringIncludes(text.stdout, "core 0 (x.y.edge-2.0): stream holds up to 20, WAL up to 27");
    // The shipper's durable mark, and a gap given up that the stream does not declare yet.
    assertEquals(lines.map((l) => [l.markSequence, l.pendingGap]), [[20, undefined], [
      22,
      undefined,
    ]]);
    {
      const marks = ShipMarks.open(walDir, "S1-edge-2");
      await marks.declareGap(0, 21, 25);
      await marks.close();
    }
    const gapped = await wal(["ship-status", walDir, ...common, "--json"]);
    const core0 = JSON.parse(gapped.stdout.trim().split("\n")[0]);
    assertEquals([core0.markSequence, core0.pendingGap], [25, {
      fromSequence: 21,
      toSequence: 25,
    }]);
    const gappedText = await wal(["ship-status", walDir, ...common]);
    assertStringIncludes(gappedText.stdout, "mark 25, entries 21 to 25 given up");
    // A node never shipped: the stream holds nothing of it, the whole WAL is the lag.
    const other = await wal([
      "ship-status",
      walDir,
      "--server",
      server.url,
      "--stream",
      "S1",
      "--node",
      "edge-3",
      "--subject",
      "x.y",
      "--json",
    ]);
    assertEquals(other.code, 0, other.stderr);
    assertEquals(other.stdout.trim().split("\n").map((l) => JSON.parse(l).lagRecords), [27, 22]);
    // A stream that does not exist: exit 1, named.
    const missing = await wal([
      "ship-status",
      walDir,
      "--server",
      server.url,
      "--stream",
      "NOPE",
      "--node",
      "n",
    ]);
    assertEquals(missing.code, 1);
    assertStringIncludes(missing.stderr, "wal ship-status:");
  },
});

Deno.test({
  name: "wal ship without --once ships new entries until SIGTERM, then closes with exit 0",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using server = await NatsServer.start(`${dir.path}/nats`);
    const walDir = `${dir.path}/wal`;
    await append(walDir, 10, "a");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...PERMS,
        CLI,
        "ship",
        walDir,
        "--server",
        server.url,
        "--stream",
        "WAL",
        "--node",
        "n1",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    try {
      await append(walDir, 40, "b");
      // Wait (bounded by the test runner, not by a timer) until the stream holds everything.
      for (;;) {
        const r = await wal([
          "ship-status",
          walDir,
          "--server",
          server.url,
          "--stream",
          "WAL",
          "--node",
          "n1",
          "--json",
        ]).catch(() => undefined);
        const lags = r?.code === 0
          ? r.stdout.trim().split("\n").map((l) => JSON.parse(l).lagRecords)
          : [];
        if (lags.length === 2 && lags.every((n) => n === 0)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      child.kill("SIGTERM");
    }
    const out = await child.output();
    const stdout = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertStringIncludes(stdout, "core 0 (wal.n1.0): shipped up to 50");
    const last = await checkStream(server.url, "WAL");
    assertEquals([last.get("wal.n1.0"), last.get("wal.n1.1")], [50, 54]);
  },
});

Deno.test({
  name: "wal ship and ship-status: usage errors exit 2, an unreachable server exits 1",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const walDir = `${dir.path}/wal`;
    await append(walDir, 1, "a");
    for (
      const [args, says] of [
        [["ship", walDir, "--stream", "S", "--node", "n"], "missing --server"],
        [["ship", walDir, "--server", "nats://127.0.0.1:1", "--node", "n"], "missing --stream"],
        [["ship-status", walDir, "--server", "u", "--stream", "S"], "missing --node"],
        [["ship", "--server", "u", "--stream", "S", "--node", "n"], "missing <dir>"],
        [["ship", walDir, "--server", "u", "--stream", "S", "--node", "n", "--bogus"], "bogus"],
      ] as const
    ) {
      const r = await wal([...args]);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertStringIncludes(r.stderr, says);
      assertStringIncludes(r.stderr, "Usage: wal ship");
    }
    // Nothing listens on port 1: the connection fails, exit 1 with the reason.
    const down = await wal([
      "ship",
      walDir,
      "--server",
      "nats://127.0.0.1:1",
      "--stream",
      "S",
      "--node",
      "n",
      "--once",
    ]);
    assertEquals(down.code, 1, down.stderr);
    assertStringIncludes(down.stderr, "wal ship:");
    // Not a WAL directory: exit 1.
    const bad = await wal([
      "ship-status",
      `${dir.path}/nowal`,
      "--server",
      "u",
      "--stream",
      "S",
      "--node",
      "n",
    ]);
    assertEquals(bad.code, 1, bad.stderr);
  },
});
