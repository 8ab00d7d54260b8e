// ShipMarks: the durable shipped positions of a WAL's shippers (<walDir>/shippers/<name>.json),
// their coalesced writes, one holder per name, and the hostile files they refuse.
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { encodeShipperMarks, marksPath, ShipMarks } from "../src/ship_marks.ts";
import { readWalMeta } from "../src/wal_meta.ts";
import { ignoreWithoutUring, runDeno, tempDir } from "./_helpers.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

/** A WAL of `cores` cores (created, then closed): its configuration. */
async function wal(dir: string, cores = 2): Promise<PerCoreWalConfig> {
  const cfg = new PerCoreWalConfig(`${dir}/wal`, cores, { segmentSizeBytes: 64 * 1024 });
  await (await PerCoreWalManager.open(cfg)).close();
  return cfg;
}

function marksOf(path: string) {
  const text = Deno.readTextFileSync(path);
  return JSON.parse(text.slice(0, text.indexOf("\n")));
}

test("open registers the shipper durably; advance raises marks that survive a reopen", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path);
  const marks = ShipMarks.open(cfg.baseDir, "nats");
  const path = marksPath(cfg.baseDir, "nats");
  assertEquals(marksOf(path).shipped, [0, 0], "registered before open returns");
  assertEquals(ShipMarks.list(cfg).map((s) => [s.name, s.shipped, s.invalid]), [
    ["nats", [0, 0], undefined],
  ]);
  assertEquals([marks.shipped(0), marks.shipped(1)], [0, 0]);
  await marks.advance(1, 42);
  assertEquals(marks.shipped(1), 42);
  assertEquals(marksOf(path).shipped, [0, 42], "durable when advance resolves");
  // Never lowered.
  await marks.advance(1, 7);
  assertEquals(marks.shipped(1), 42);
  await marks.close();
  await marks.close();
  await assertRejects(() => marks.advance(0, 1), PerCoreWalError, "closed");
  await using again = ShipMarks.open(new URL(`file://${cfg.baseDir}`), "nats");
  assertEquals([again.shipped(0), again.shipped(1)], [0, 42]);
});

test("advances are coalesced: many at once, every one resolves, the file holds the latest", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path);
  await using marks = ShipMarks.open(cfg, "nats");
  const waits = [];
  for (let s = 1; s <= 200; s++) waits.push(marks.advance(s % 2, s));
  await Promise.all(waits);
  assertEquals([marks.shipped(0), marks.shipped(1)], [200, 199]);
  assertEquals(marksOf(marksPath(cfg.baseDir, "nats")).shipped, [200, 199]);
  // No temporary file left behind.
  assertEquals(
    [...Deno.readDirSync(`${cfg.baseDir}/shippers`)].map((e) => e.name).sort(),
    ["nats.json", "nats.lock"],
  );
});

test("close writes a mark asked for and not yet written", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path);
  const marks = ShipMarks.open(cfg, "nats");
  const pending = marks.advance(0, 9);
  await marks.close();
  await pending;
  assertEquals(marksOf(marksPath(cfg.baseDir, "nats")).shipped, [9, 0]);
});

test("one ShipMarks per name at a time; remove is refused while it is open", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path);
  const marks = ShipMarks.open(cfg, "nats");
  assertThrows(() => ShipMarks.open(cfg, "nats"), PerCoreWalError, "attached");
  assertThrows(() => ShipMarks.remove(cfg, "nats"), PerCoreWalError, "attached");
  await using other = ShipMarks.open(cfg, "kafka");
  await marks.close();
  assertEquals(ShipMarks.remove(cfg, "nats"), true);
  assertEquals(ShipMarks.remove(cfg, "nats"), false);
  assertEquals(ShipMarks.list(cfg).map((s) => s.name), ["kafka"]);
  assertEquals(other.shipped(0), 0);
});

test("bad arguments: names, cores, sequences, options, a directory without a WAL", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path);
  for (const name of ["", "../x", "a/b", ".hidden", "-x", "a.b", "x".repeat(65)]) {
    assertThrows(() => ShipMarks.open(cfg, name), TypeError, "shipper name");
  }
  assertThrows(() => ShipMarks.open(cfg, "n", { onEvnt: () => {} } as never), TypeError);
  await using marks = ShipMarks.open(cfg, "n");
  await assertRejects(() => marks.advance(0, -1), RangeError);
  await assertRejects(() => marks.advance(0, 1.5), RangeError);
  await assertRejects(() => marks.advance(0, 2 ** 53), RangeError);
  await assertRejects(() => marks.advance(-1, 1), RangeError);
  await assertRejects(() => marks.advance(2, 1), PerCoreWalError, "out of range");
  assertThrows(() => ShipMarks.open(`${dir.path}/nowal`, "n"), PerCoreWalError, "no WAL");
});

test("hostile marks files are refused, never followed or overwritten", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path);
  await ShipMarks.open(cfg, "nats").close();
  const path = marksPath(cfg.baseDir, "nats");
  const good = Deno.readFileSync(path);
  const walId = readWalMeta(cfg.baseDir)!.walId!;
  const outside = `${dir.path}/outside.json`;
  Deno.writeFileSync(outside, good);
  const cases: [string, () => void, string, string][] = [
    ["torn", () => Deno.writeFileSync(path, good.subarray(0, 20)), "Corrupted", "torn"],
    [
      "flipped",
      () => {
        const b = good.slice();
        b[12] ^= 1;
        Deno.writeFileSync(path, b);
      },
      "Corrupted",
      "checksum",
    ],
    [
      "another WAL",
      () => Deno.writeFileSync(path, encodeShipperMarks("nats", "0".repeat(32), [5, 5])),
      "ConfigMismatch",
      "another WAL",
    ],
    [
      "another name",
      () => Deno.writeFileSync(path, encodeShipperMarks("kafka", walId, [5, 5])),
      "Corrupted",
      "names shipper",
    ],
    [
      "not sequences",
      () => Deno.writeFileSync(path, encodeShipperMarks("nats", walId, [-1, 5])),
      "Corrupted",
      "not sequences",
    ],
    [
      "a gap past its mark",
      () =>
        Deno.writeFileSync(
          path,
          encodeShipperMarks("nats", walId, [5, 5], new Date(), [
            { coreId: 0, fromSequence: 3, toSequence: 6 },
          ]),
        ),
      "Corrupted",
      "gaps",
    ],
    ["a symbolic link", () => Deno.symlinkSync(outside, path), "Unsafe", "symbolic link"],
    ["a FIFO", () => new Deno.Command("mkfifo", { args: [path] }).outputSync(), "Unsafe", "FIFO"],
  ];
  for (const [what, plant, code, words] of cases) {
    Deno.removeSync(path);
    plant();
    const e = assertThrows(() => ShipMarks.open(cfg, "nats"), PerCoreWalError, words, what);
    assertEquals(e.code, code, what);
    const [listed] = ShipMarks.list(cfg);
    assert(listed.invalid !== undefined && listed.shipped.length === 0, what);
  }
  assertEquals(Deno.readFileSync(outside), good, "the link's target is untouched");
  // A link planted at the temporary name is removed, never written through.
  Deno.removeSync(path);
  Deno.symlinkSync(outside, `${path}.tmp`);
  await using marks = ShipMarks.open(cfg, "nats");
  await marks.advance(0, 3);
  assertEquals(Deno.readFileSync(outside), good);
  assertEquals(marksOf(path).shipped, [3, 0]);
});

test("a shippers directory that is a symbolic link is refused, and holds every segment", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path);
  Deno.mkdirSync(`${dir.path}/elsewhere`);
  Deno.symlinkSync(`${dir.path}/elsewhere`, `${cfg.baseDir}/shippers`);
  assertThrows(() => ShipMarks.open(cfg, "nats"), PerCoreWalError, "symbolic link");
  const listed = ShipMarks.list(cfg);
  assertEquals(listed.length, 1);
  assert(listed[0].invalid !== undefined);
  assertEquals([...Deno.readDirSync(`${dir.path}/elsewhere`)], []);
});

test("wal stats and wal checkpoints show what each shipper shipped and holds", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path, 1);
  const m = await PerCoreWalManager.open(cfg);
  const w = m.writer(0);
  let last = 0;
  for (let i = 0; i < 1000; i++) last = w.appendPut(`k${i}`, "v".repeat(200));
  await w.waitDurable(last);
  await m.close();
  await using marks = ShipMarks.open(cfg, "nats");
  await marks.advance(0, 7);
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const perms = ["--allow-read", "--allow-write", "--allow-env"];
  const stats = await runDeno(["run", ...perms, cli, "stats", cfg.baseDir, "--json"]);
  assertEquals(stats.code, 0, stats.stderr);
  const line = stats.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((j) =>
    j.kind === "shipper"
  );
  assertEquals([line.name, line.shipped, line.invalid], ["nats", [7], null]);
  assert(line.unshippedSegments[0] >= 3, JSON.stringify(line));
  const text = await runDeno(["run", ...perms, cli, "checkpoints", cfg.baseDir]);
  assertEquals(text.code, 0, text.stderr);
  assert(
    /shipper nats: core 0 shipped up to 7 \(holds \d+ segments\)/.test(text.stdout),
    text.stdout,
  );
});

test("declareGap raises the mark and records the gap in one durable write; clearGap trims it; a version 1 file reads as no gap", async () => {
  await using dir = await tempDir();
  const cfg = await wal(dir.path);
  const path = marksPath(cfg.baseDir, "nats");
  const walId = readWalMeta(cfg.baseDir)!.walId!;
  // A file from before the gaps were kept.
  await ShipMarks.open(cfg, "nats").close();
  Deno.writeFileSync(path, encodeShipperMarks("nats", walId, [10, 4], new Date(), [], 1));
  {
    await using marks = ShipMarks.open(cfg, "nats");
    assertEquals([marks.shipped(0), marks.pendingGap(0)], [10, undefined]);
    await marks.declareGap(0, 11, 30);
    assertEquals(marksOf(path).version, 2);
    assertEquals(marksOf(path).shipped, [30, 4], "the mark past the gap");
    assertEquals(marksOf(path).gaps, [{ coreId: 0, fromSequence: 11, toSequence: 30 }]);
    // A later drop merges with the one pending.
    await marks.declareGap(0, 31, 40);
    await marks.declareGap(1, 5, 5);
    assertEquals(marks.pendingGap(0), { coreId: 0, fromSequence: 11, toSequence: 40 });
    await assertRejects(() => marks.declareGap(0, 9, 8), RangeError);
    // The stream holds the marker's first part (a lost acknowledgement): the rest stays.
    await marks.clearGap(0, 20);
  }
  {
    await using marks = ShipMarks.open(cfg, "nats");
    assertEquals(marks.pendingGap(0), { coreId: 0, fromSequence: 21, toSequence: 40 });
    assertEquals(ShipMarks.list(cfg)[0].gaps.length, 2);
    await marks.clearGap(0, 40);
    await marks.clearGap(1, 5);
    assertEquals([marks.pendingGap(0), marks.pendingGap(1)], [undefined, undefined]);
    assertEquals(marksOf(path).gaps, []);
    assertEquals(marksOf(path).shipped, [40, 5]);
  }
});
