// The `wal` command-line tool, run as a subprocess (`deno run cli.ts ...`) against real WAL
// directories written by a real manager: clean, with a torn tail, with a corrupted record, with a
// checkpoint, held by a live manager, and followed while it is written.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { CoreLog } from "../src/core_log.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { PerCoreRecoveryManager } from "../src/recovery.ts";
import { HAVE_STRACE, ignoreWithoutUring, tempDir } from "./_helpers.ts";
import { holeBeforeBatchC, tailAcrossRotation } from "./_crash_tails.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env"];

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

/** Runs `wal ...args` to completion. */
async function wal(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, CLI, ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const jsonLines = (s: string) =>
  s.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);

const ROUNDS = 3;
const PER_ROUND = 300;

/** Three epochs on two cores (small segments, so several per core), one binary value per 7. */
async function build(dir: string, options: { checkpoint?: boolean } = {}) {
  const cfg = new PerCoreWalConfig(`${dir}/wal`, 2, { segmentSizeBytes: 32 * 1024 });
  const m = await PerCoreWalManager.open(cfg);
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < PER_ROUND; i++) {
        const value = i % 7 === 0 ? new Uint8Array([0xff, 0x00, i & 0xff]) : `value ${r}.${i}`;
        m.writer(i % 2).appendPut(`key:${r}:${i}`, value);
      }
      m.advanceEpoch();
      m.writeEpochBarrierAll();
      await m.syncAll();
      if (options.checkpoint && r === 1) await new CheckpointCoordinator(m).checkpoint();
    }
  } finally {
    await m.close();
  }
  // Puts, plus one barrier per core and round.
  return { cfg, entries: ROUNDS * PER_ROUND + ROUNDS * 2 };
}

/** Every record of a core with its file and offset. */
async function records(cfg: PerCoreWalConfig, core: number) {
  const out: { path: string; offset: number; length: number; epoch: number }[] = [];
  for (const s of listCoreSegments(cfg, core)) {
    await using r = await PerCoreWalReader.open(s.path);
    for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
      out.push({ path: s.path, offset: x.offset, length: x.length, epoch: x.entry.epoch });
    }
  }
  return out;
}

function flip(path: string, at: number) {
  const b = Deno.readFileSync(path);
  b[at] ^= 0x10;
  Deno.writeFileSync(path, b);
}

const snapshot = (dir: string) =>
  [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".log")).map((e) => {
    const b = Deno.readFileSync(`${dir}/${e.name}`);
    return `${e.name}:${b.length}:${b.reduce((h, x) => (h * 31 + x) >>> 0, 7)}`;
  }).sort();

test("wal inspect, verify and stats on a clean WAL: exit 0 and the counts that were written", async () => {
  await using dir = await tempDir();
  const { cfg, entries } = await build(dir.path);
  const v = await wal("verify", cfg.baseDir);
  assertEquals(v.code, 0, v.stderr);
  assertStringIncludes(v.stdout, `${entries} entries`);
  assertEquals(v.stderr, "", "no progress bar when stderr is not a terminal");

  const i = await wal("inspect", cfg.baseDir, "--json");
  assertEquals(i.code, 0, i.stderr);
  const lines = jsonLines(i.stdout);
  const cores = lines.filter((l) => l.kind === "core");
  assertEquals(cores.map((c) => c.entries as number).reduce((a, b) => a + b), entries);
  const segs = lines.filter((l) => l.kind === "segment");
  assertEquals(segs.length, listCoreSegments(cfg, 0).length + listCoreSegments(cfg, 1).length);
  assert(segs.filter((s) => s.core === 0).length >= 2, "several segments per core");
  for (const c of cores) assertEquals(c.firstSequence, 1, "sequences as numbers");
  assertEquals(lines[0].damage, 0);

  const text = await wal("inspect", cfg.baseDir);
  assertStringIncludes(text.stdout, "wal-0-000000.log");
  assertStringIncludes(text.stdout, "damage: none");

  const s = await wal("stats", cfg.baseDir, "--json");
  assertEquals(s.code, 0, s.stderr);
  const total = jsonLines(s.stdout).find((l) => l.kind === "stats")!;
  assertEquals(total.entries, entries);
  assertEquals(total.types, {
    put: ROUNDS * PER_ROUND,
    delete: 0,
    checkpoint: 0,
    commit: 0,
    epochBarrier: ROUNDS * 2,
  });
  assertEquals(total.maxEpoch, ROUNDS);
});

test("wal dump merges a directory across cores in order, filters, and prints binary as hex", async () => {
  await using dir = await tempDir();
  const { cfg, entries } = await build(dir.path);
  const all = await wal("dump", cfg.baseDir, "--json");
  assertEquals(all.code, 0, all.stderr);
  const es = jsonLines(all.stdout);
  assertEquals(es.length, entries);
  const key = (
    e: Record<string, unknown>,
  ) => [e.epoch as number, BigInt(e.timestampNs as string), e.core as number] as const;
  for (let k = 1; k < es.length; k++) {
    const [a, b] = [key(es[k - 1]), key(es[k])];
    assert(a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] <= b[2]))));
  }
  const bin = es.find((e) => e.key === "key:0:0")!;
  assertEquals(bin.value, "0xff0000");
  assertEquals(es.find((e) => e.key === "key:0:1")!.value, "value 0.1");

  const epoch1 = jsonLines((await wal("dump", cfg.baseDir, "--json", "--epoch", "1")).stdout);
  assert(epoch1.length > 0 && epoch1.every((e) => e.epoch === 1));
  const late = jsonLines((await wal("dump", cfg.baseDir, "--json", "--from-seq", "400")).stdout);
  assert(late.length > 0 && late.every((e) => (e.sequence as number) >= 400));
  assertEquals(
    late.length,
    es.filter((e) => (e.sequence as number) >= 400).length,
  );

  const seg = listCoreSegments(cfg, 1)[0].path;
  const one = await wal("dump", seg);
  assertEquals(one.code, 0, one.stderr);
  const first = one.stdout.split("\n")[0];
  assertStringIncludes(first, "core 1 seq 1 epoch 0");
  assertStringIncludes(first, `put key="key:0:1" value="value 0.1"`);
});

test("a torn tail: verify warns (exit 0), --strict fails naming file and offset; repair cuts it", async () => {
  await using dir = await tempDir();
  const { cfg } = await build(dir.path);
  const recs = await records(cfg, 0);
  const last = recs[recs.length - 1];
  flip(last.path, last.offset + 20);

  const v = await wal("verify", cfg.baseDir);
  assertEquals(v.code, 0, v.stderr);
  assertStringIncludes(v.stderr, `warning: ${last.path}: TornWrite at offset ${last.offset}`);
  const strict = await wal("verify", "--strict", cfg.baseDir);
  assertEquals(strict.code, 1);
  assertStringIncludes(strict.stderr, `${last.path}: TornWrite at offset ${last.offset}`);

  const before = snapshot(cfg.baseDir);
  const dry = await wal("repair", cfg.baseDir, "--dry-run");
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, `tornTail at offset ${last.offset}`);
  assertStringIncludes(dry.stdout, "would be truncated");
  assertEquals(snapshot(cfg.baseDir), before, "--dry-run changes nothing");

  const r = await wal("repair", cfg.baseDir, "--mode", "tolerateTornTail");
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "done: truncated");
  assertEquals(Deno.statSync(last.path).size, last.offset);
  const after = await wal("verify", "--strict", cfg.baseDir);
  assertEquals(after.code, 0, after.stderr);
});

test("a corrupted record: verify and dump exit 1 naming segment and offset; repair refuses it in tolerateTornTail and cuts it in pointInTime", async () => {
  await using dir = await tempDir();
  const { cfg } = await build(dir.path);
  const recs = await records(cfg, 1);
  const victim = recs.filter((r) => r.epoch === 2)[10]; // inside epoch 2, not at its start
  flip(victim.path, victim.offset + 40);

  const v = await wal("verify", cfg.baseDir);
  assertEquals(v.code, 1);
  assertStringIncludes(v.stderr, `${victim.path}: ChecksumMismatch at offset ${victim.offset}`);
  const vj = jsonLines((await wal("verify", cfg.baseDir, "--json")).stdout);
  assertEquals(vj.find((l) => l.kind === "damage")!.offset, victim.offset);
  assertEquals(vj.at(-1)!.ok, false);
  const i = await wal("inspect", cfg.baseDir);
  assertEquals(i.code, 1);
  assertStringIncludes(i.stdout, `DAMAGE at offset ${victim.offset}`);

  const d = await wal("dump", cfg.baseDir);
  assertEquals(d.code, 1);
  assertStringIncludes(d.stderr, victim.path);
  assertStringIncludes(d.stderr, `at offset ${victim.offset}`);

  const before = snapshot(cfg.baseDir);
  const refused = await wal("repair", cfg.baseDir);
  assertEquals(refused.code, 1);
  assertStringIncludes(refused.stderr, victim.path);
  assertStringIncludes(refused.stderr, "--mode pointInTime or salvage");
  const salvage = await wal("repair", cfg.baseDir, "--mode", "salvage");
  assertEquals(salvage.code, 1, "salvage cannot repair in place");
  assertStringIncludes(salvage.stdout, `corrupted at offset ${victim.offset}`);
  const dry = await wal("repair", cfg.baseDir, "--mode", "pointInTime", "--dry-run");
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, "stopping before epoch 2");
  assertEquals(snapshot(cfg.baseDir), before, "refusals and --dry-run change nothing");

  const r = await wal("repair", cfg.baseDir, "--mode", "pointInTime");
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "done: replayStopped");
  const after = await wal("verify", cfg.baseDir);
  assertEquals(after.code, 0, after.stderr);
  const left = jsonLines((await wal("dump", cfg.baseDir, "--json")).stdout);
  assert(left.length > 0 && left.every((e) => (e.epoch as number) < 2));
});

test("wal checkpoints lists them and the one recovery uses; a damaged manifest fails verify", async () => {
  await using dir = await tempDir();
  const { cfg } = await build(dir.path, { checkpoint: true });
  const c = await wal("checkpoints", cfg.baseDir, "--json");
  assertEquals(c.code, 0, c.stderr);
  const [k] = jsonLines(c.stdout);
  assertEquals([k.status, k.id, k.epoch], ["used", 1, 2]);
  assertEquals(k.stateEntries, 2 * PER_ROUND);
  assertEquals((await wal("verify", cfg.baseDir)).code, 0);

  const manifest = `${k.path}/manifest.json`;
  flip(manifest, 10);
  const bad = await wal("checkpoints", cfg.baseDir);
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stdout, "invalid: manifest fails its checksum");
  const v = await wal("verify", cfg.baseDir);
  assertEquals(v.code, 1);
  assertStringIncludes(v.stderr, `${k.path}: Corrupted at offset 0: manifest fails its checksum`);
});

test("wal repair is refused while a manager holds the directory; the read-only commands work on it", async () => {
  await using dir = await tempDir();
  const { cfg } = await build(dir.path);
  const m = await PerCoreWalManager.open(cfg);
  try {
    m.writer(0).appendPut("live", "yes");
    await m.syncAll();
    const before = snapshot(cfg.baseDir);
    const r = await wal("repair", cfg.baseDir);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "is in use by another writer");
    assertEquals(snapshot(cfg.baseDir), before);
    for (const cmd of ["verify", "inspect", "stats", "checkpoints"]) {
      const x = await wal(cmd, cfg.baseDir);
      assertEquals(x.code, 0, `${cmd}: ${x.stderr}`);
    }
    const d = jsonLines((await wal("dump", cfg.baseDir, "--json")).stdout);
    assert(d.some((e) => e.key === "live"));
    assertEquals((await wal("repair", cfg.baseDir, "--dry-run")).code, 0);
  } finally {
    await m.close();
  }
});

test("wal tail --follow prints new entries as they are written, across segment rotation", async () => {
  await using dir = await tempDir();
  const { cfg } = await build(dir.path);
  const m = await PerCoreWalManager.open(cfg);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, CLI, "tail", cfg.baseDir, "--follow", "-n", "1", "--json"].concat(
      ["--interval-ms", "20"],
    ),
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  // Whole lines only: a read can end in the middle of one.
  const lines = () =>
    text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter((l) => l !== "").map((l) =>
      JSON.parse(l)
    );
  const until = async (ok: () => boolean, what: string) => {
    const deadline = Date.now() + 30_000;
    while (!ok()) {
      assert(Date.now() < deadline, `timed out waiting for ${what}: ${text.slice(-500)}`);
      const r = await reader.read();
      assert(!r.done, `tail ended early: ${text.slice(-500)}`);
      text += r.value;
    }
  };
  try {
    await until(() => lines().length >= 2, "the last entry of each core");
    const start = lines();
    assertEquals(start.map((e) => e.type), ["epochBarrier", "epochBarrier"]);
    const segsBefore = listCoreSegments(cfg, 0).length;
    const N = 1200; // ~100 KiB on core 0: several rotations of 32 KiB segments
    for (let i = 0; i < N; i++) m.writer(0).appendPut(`new:${i}`, `v${i}`.padEnd(40, "."));
    m.writer(1).appendPut("other", "core");
    await m.syncAll();
    await until(() => lines().length >= 2 + N + 1, "the new entries");
    assert(listCoreSegments(cfg, 0).length > segsBefore + 1, "the log rotated");
    const fresh = lines().slice(2);
    const core0 = fresh.filter((e) => e.core === 0);
    assertEquals(core0.map((e) => e.key), Array.from({ length: N }, (_, i) => `new:${i}`));
    const seq0 = start.find((e) => e.core === 0).sequence;
    core0.forEach((e, i) => assertEquals(e.sequence, seq0 + 1 + i));
    assertEquals(fresh.filter((e) => e.core === 1).map((e) => e.key), ["other"]);
  } finally {
    child.kill("SIGINT");
    // Drain what is left, so the stream closes.
    while (!(await reader.read()).done) { /* drain */ }
    reader.releaseLock();
    const status = await child.status;
    await m.close();
    assertEquals(status.code, 0, "SIGINT ends tail cleanly");
  }
  assertEquals(lines().length, 2 + 1200 + 1, "nothing printed twice");
});

Deno.test("wal usage errors exit 2; every command has --help", async () => {
  for (const args of [[], ["bogus"], ["verify"], ["verify", "a", "b"], ["dump", "x", "--nope"]]) {
    const r = await wal(...args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert(r.stderr.includes("Usage"), r.stderr);
  }
  const mode = await wal("repair", "x", "--mode", "strict");
  assertEquals(mode.code, 2);
  assertStringIncludes(mode.stderr, "--mode must be tolerateTornTail, pointInTime, salvage");
  const num = await wal("dump", "x", "--from-seq", "-3");
  assertEquals(num.code, 2);
  for (const cmd of ["inspect", "dump", "verify", "repair", "checkpoints", "stats", "tail"]) {
    const h = await wal(cmd, "--help");
    assertEquals(h.code, 0, cmd);
    assertStringIncludes(h.stdout, `Usage: wal ${cmd}`);
  }
  assertStringIncludes((await wal("tail", "--help")).stdout, "polling");
  const missing = await wal("verify", "/nonexistent/wal-dir");
  assertEquals(missing.code, 1);
  assertStringIncludes(missing.stderr, `"/nonexistent/wal-dir" does not exist`);
});

Deno.test({
  name: "wal tail fdatasyncs a segment after reading its records and before printing them",
  ignore: ignoreWithoutUring || !HAVE_STRACE,
  fn: async () => {
    await using dir = await tempDir();
    const { cfg } = await build(dir.path);
    const trace = `${dir.path}/trace`;
    const out = await new Deno.Command("strace", {
      args: ["-f", "-o", trace, "-e", "trace=fdatasync,write", Deno.execPath(), "run", ...PERMS]
        .concat([CLI, "tail", cfg.baseDir, "-n", "2", "--json"]),
      stdin: "null",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertEquals(jsonLines(new TextDecoder().decode(out.stdout)).length, 4);
    const lines = Deno.readTextFileSync(trace).split("\n");
    const syncs = lines.flatMap((l, i) => (/fdatasync\(\d+\)\s+= 0/.test(l) ? [i] : []));
    const print = lines.findIndex((l) => /write\(1, "\{\\"core\\"/.test(l));
    assert(print >= 0, "the entries were written to stdout");
    // At least one per core (one per segment read with records), all before the output.
    assert(syncs.length >= 2 && syncs.every((i) => i < print), `${syncs} then ${print}`);
  },
});

// Crash tails (format v2, docs/FORMAT.md section 8): the CLI classifies as recovery does. The
// directories are written by a real CoreLog (sync backend) and damaged as a power loss would.

/** Sequences that `wal dump --json <dir>` prints. */
async function dumped(dir: string): Promise<number[]> {
  const d = await wal("dump", "--json", dir);
  assertEquals(d.code, 0, d.stderr);
  return jsonLines(d.stdout).map((l) => Number(l.sequence));
}

/** Sequences that a read-only recovery returns (core 0). */
async function recoveredSequences(cfg: PerCoreWalConfig): Promise<number[]> {
  using r = await new PerCoreRecoveryManager(cfg, { readOnly: true }).recoverWalOnly();
  return [...r.state].map(([k]) => Number(new TextDecoder().decode(k).split("-")[1]))
    .sort((a, b) => a - b);
}

const seq = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** `wal stats --json`'s totals line. */
async function statsTotals(dir: string): Promise<Record<string, unknown>> {
  const s = await wal("stats", "--json", dir);
  assertEquals(s.code, 0, s.stderr);
  return jsonLines(s.stdout).find((l) => l.kind === "stats")!;
}

Deno.test("crash tail in the last segment (a hole, then batches never acknowledged): verify warns, inspect/stats/dump agree with recovery, repair cuts it, verify is clean", async () => {
  await using dir = await tempDir();
  const { config, path, holeOffset } = await holeBeforeBatchC(dir.path, false);
  const wdir = config.baseDir;
  assertEquals(await recoveredSequences(config), [1, 2, 3]);

  const v = await wal("verify", wdir);
  assertEquals(v.code, 0, v.stderr);
  assertStringIncludes(v.stderr, `warning: ${path}: TornWrite at offset ${holeOffset}`);
  assertStringIncludes(v.stdout, "ok: 2 segments, 3 entries");
  const strict = await wal("verify", "--strict", wdir);
  assertEquals(strict.code, 1);

  const i = await wal("inspect", "--json", wdir);
  assertEquals(i.code, 0, i.stderr);
  const seg0 = jsonLines(i.stdout).find((l) => l.kind === "segment" && l.index === 0)!;
  assertEquals([seg0.state, seg0.entries], ["tornTail", 3]);
  const t = await statsTotals(wdir);
  assertEquals([t.entries, t.damage, t.tornTails], [3, 0, 1]);
  assertEquals(await dumped(wdir), [1, 2, 3]);

  const before = snapshot(wdir);
  const dry = await wal("repair", "--dry-run", wdir);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, `tornTail at offset ${holeOffset}`);
  assertEquals(snapshot(wdir), before, "--dry-run changes nothing");
  const r = await wal("repair", wdir);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "done: truncated");
  assertEquals(Deno.statSync(path).size, holeOffset);
  const after = await wal("verify", "--strict", wdir);
  assertEquals(after.code, 0, after.stderr);
  assertEquals(after.stderr, "");
  assertEquals(await dumped(wdir), [1, 2, 3]);
});

Deno.test("crash tail across a rotation (hole in segment 0, segment 1 written): verify warns naming the later segments, inspect marks them crashTail, repair puts them aside, verify is clean", async () => {
  await using dir = await tempDir();
  const { config, path, holeOffset } = await tailAcrossRotation(dir.path, false);
  const wdir = config.baseDir;
  const seg1 = config.segmentPath(0, 1);
  assertEquals(await recoveredSequences(config), seq(1, 5));

  const v = await wal("verify", wdir);
  assertEquals(v.code, 0, v.stderr);
  assertStringIncludes(v.stderr, `warning: ${path}: TornWrite at offset ${holeOffset}`);
  assertStringIncludes(v.stderr, "part of the crash tail too: wal-0-000001.log");
  assertStringIncludes(v.stdout, "5 entries");
  assert(!v.stderr.includes("ChecksumMismatch"), v.stderr);

  const i = await wal("inspect", "--json", wdir);
  assertEquals(i.code, 0, i.stderr);
  const segs = jsonLines(i.stdout).filter((l) => l.kind === "segment");
  assertEquals(segs[0].state, "tornTail");
  assertEquals(segs[1].state, "crashTail");
  assertEquals(segs[1].file, seg1);
  assertEquals((segs[1].crashTail as Record<string, unknown>).offset, holeOffset);
  assertEquals(
    (segs[0].tornTail as Record<string, unknown>).tailSegments,
    listCoreSegments(config, 0).slice(1).map((x) => x.path),
  );
  const text = await wal("inspect", wdir);
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(
    text.stdout,
    `crashTail: part of the crash tail that begins in wal-0-000000.log at offset ${holeOffset}`,
  );
  const t = await statsTotals(wdir);
  assertEquals([t.entries, t.damage, t.tornTails], [5, 0, 1]);
  assertEquals(await dumped(wdir), seq(1, 5));
  const tl = await wal("tail", "--json", "-n", "100", wdir);
  assertEquals(tl.code, 0, tl.stderr);
  assertEquals(jsonLines(tl.stdout).map((l) => Number(l.sequence)), seq(1, 5));

  const before = snapshot(wdir);
  const dry = await wal("repair", "--dry-run", wdir);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, `wal-0-000000.log  core 0  tornTail at offset ${holeOffset}`);
  assertEquals(snapshot(wdir), before, "--dry-run changes nothing");
  const r = await wal("repair", wdir);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(Deno.statSync(path).size, holeOffset);
  assertEquals(listCoreSegments(config, 0).map((s) => s.index), [0]);
  const after = await wal("verify", "--strict", wdir);
  assertEquals(after.code, 0, after.stderr);
  assertStringIncludes(after.stdout, "ok: 1 segments, 5 entries");
  assertEquals(await dumped(wdir), seq(1, 5));
});

Deno.test("crash tail at a rotation (segment 0's last batch lost whole, segment 1 written): segment 1 begins the tail for verify, inspect, stats, dump and repair, as for recovery", async () => {
  await using dir = await tempDir();
  const { config } = await tailAcrossRotation(dir.path, false, "batch");
  const wdir = config.baseDir;
  const seg1 = config.segmentPath(0, 1);
  assertEquals(await recoveredSequences(config), seq(1, 4));

  const v = await wal("verify", wdir);
  assertEquals(v.code, 0, v.stderr);
  assertStringIncludes(v.stderr, `warning: ${seg1}: TornWrite at offset 0`);
  assertStringIncludes(v.stderr, "no batch marker claims sequence 5");
  const i = await wal("inspect", "--json", wdir);
  assertEquals(i.code, 0, i.stderr);
  const segs = jsonLines(i.stdout).filter((l) => l.kind === "segment");
  assertEquals(segs.map((s) => s.state).slice(0, 2), ["zeroTail", "crashTail"]);
  const t = await statsTotals(wdir);
  assertEquals([t.entries, t.damage, t.tornTails], [4, 0, 1]);
  assertEquals(await dumped(wdir), seq(1, 4));

  const dry = await wal("repair", "--dry-run", wdir);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, "wal-0-000001.log  core 0  tornTail at offset 0");
  const r = await wal("repair", wdir);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "done: truncated");
  const after = await wal("verify", "--strict", wdir);
  assertEquals(after.code, 0, after.stderr);
  assertStringIncludes(after.stdout, "4 entries");
  // The log goes on where recovery said it ends.
  const log = await CoreLog.open(config, 0);
  assertEquals(log.appendPut("k-5", "after"), 5);
  await log.close();
  assertEquals(await dumped(wdir), seq(1, 5));
});

Deno.test("a hole that a later batch marker proves acknowledged stays corruption: verify, inspect and dump exit 1 naming file and offset; repair refuses it", async () => {
  for (const across of [false, true]) {
    await using dir = await tempDir();
    const { config, path, holeOffset } = across
      ? await tailAcrossRotation(dir.path, true)
      : await holeBeforeBatchC(dir.path, true);
    const wdir = config.baseDir;
    const v = await wal("verify", wdir);
    assertEquals(v.code, 1, v.stdout);
    assertStringIncludes(v.stderr, `${path}: `);
    assertStringIncludes(v.stderr, ` at offset ${holeOffset}: `);
    assertStringIncludes(v.stderr, "were acknowledged");
    const i = await wal("inspect", "--json", wdir);
    assertEquals(i.code, 1);
    const segs = jsonLines(i.stdout).filter((l) => l.kind === "segment");
    assertEquals(segs[0].state, "corrupted");
    assert(!segs.some((s) => s.state === "crashTail"), i.stdout);
    const t = await statsTotals(wdir);
    assertEquals([t.damage, t.tornTails], [1, 0]);
    const d = await wal("dump", wdir);
    assertEquals(d.code, 1);
    assertStringIncludes(d.stderr, `at offset ${holeOffset}`);
    const before = snapshot(wdir);
    for (const args of [["--dry-run"], []]) {
      const r = await wal("repair", ...args, wdir);
      assertEquals(r.code, 1, r.stdout);
      assertStringIncludes(r.stderr, path);
    }
    assertEquals(snapshot(wdir), before, "nothing was cut");
  }
});
