// Edges of the `wal` tool (issue 16, item 10): damage before a checkpoint's position, where
// verify fails and repair must say why it does not act; the offset of a damage said once; and
// `--core` out of range refused instead of printing nothing.
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertStringIncludes,
} from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { ignoreWithoutUring, runDeno, tempDir } from "./_helpers.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function wal(...args: string[]) {
  return await runDeno(["run", "--allow-read", "--allow-write", CLI, ...args]);
}

/** Two cores, three epochs, a checkpoint after the second; small segments. */
async function build(dir: string): Promise<PerCoreWalConfig> {
  const cfg = new PerCoreWalConfig(`${dir}/wal`, 2, { segmentSizeBytes: 32 * 1024 });
  const m = await PerCoreWalManager.open(cfg);
  try {
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < 300; i++) m.writer(i % 2).appendPut(`key:${r}:${i}`, `value ${r}.${i}`);
      m.advanceEpoch();
      m.writeEpochBarrierAll();
      await m.syncAll();
      if (r === 1) await new CheckpointCoordinator(m).checkpoint();
    }
  } finally {
    await m.close();
  }
  return cfg;
}

/** Flips a bit inside the third record of core 0's first segment (before the checkpoint). */
async function flipEarlyRecord(cfg: PerCoreWalConfig) {
  const path = listCoreSegments(cfg, 0)[0].path;
  let offset = -1;
  {
    await using r = await PerCoreWalReader.open(path);
    for (let i = 0; i < 3; i++) {
      const x = await r.readNext();
      assert(x.kind === "entry");
      offset = x.offset;
    }
  }
  const b = Deno.readFileSync(path);
  b[offset + 30] ^= 0x10;
  Deno.writeFileSync(path, b);
  return { path, offset };
}

const files = (dir: string) =>
  [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) =>
    `${e.name}:${Deno.readFileSync(`${dir}/${e.name}`).join(",")}`
  ).sort();

Deno.test({
  name: "damage before the checkpoint: verify exits 1, and repair (dry run or not) names it, " +
    "says why it does not act, exits 1 and changes nothing",
  ignore: ignoreWithoutUring,
  fn: async () => {
    await using dir = await tempDir();
    const cfg = await build(dir.path);
    const { path, offset } = await flipEarlyRecord(cfg);
    const v = await wal("verify", cfg.baseDir);
    assertEquals(v.code, 1, v.stderr);
    assertStringIncludes(v.stderr, `${path}: ChecksumMismatch at offset ${offset}`);
    const before = files(cfg.baseDir);
    for (const args of [["--dry-run"], [], ["--dry-run", "--json"]]) {
      const r = await wal("repair", ...args, cfg.baseDir);
      assertEquals(r.code, 1, `repair ${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assertStringIncludes(r.stdout, "before checkpoint 1's position on core 0");
      assertStringIncludes(r.stderr, "cannot fix");
      if (args.includes("--json")) {
        const line = JSON.parse(r.stdout.split("\n").find((l) => l.includes('"unfixed"'))!);
        assertEquals([line.path, line.offset, line.coreId], [path, offset, 0]);
      } else {
        assertStringIncludes(
          r.stdout,
          `wal-0-000000.log  core 0  ChecksumMismatch at offset ${offset}`,
        );
        assertStringIncludes(r.stdout, "1 damage(s) it cannot fix");
      }
    }
    assertEquals(files(cfg.baseDir), before, "repair changed nothing");
  },
});

Deno.test({
  name: "a damage's offset is said once: dump's message puts it before the reason",
  ignore: ignoreWithoutUring,
  fn: async () => {
    await using dir = await tempDir();
    const cfg = await build(dir.path);
    const { path, offset } = await flipEarlyRecord(cfg);
    for (const target of [cfg.baseDir, path]) {
      const d = await wal("dump", target);
      assertEquals(d.code, 1);
      assertStringIncludes(d.stderr, `"${path}" at offset ${offset}: checksum mismatch`);
      assertMatch(d.stderr, /followed by a valid record at offset \d+/);
      assertNotMatch(d.stderr, /at offset \d+ at offset \d+/);
      assertNotMatch(d.stderr, /at offset \d+\D+at offset \d+ \(/);
    }
  },
});

Deno.test({
  name: "wal dump --core out of range exits 2 naming the WAL's cores; in range still prints",
  ignore: ignoreWithoutUring,
  fn: async () => {
    await using dir = await tempDir();
    const cfg = await build(dir.path);
    const seg0 = listCoreSegments(cfg, 0)[0].path;
    for (
      const [args, says] of [
        [["--core", "7", cfg.baseDir], "--core 7 is out of range"],
        [["--core", "2", seg0], "--core 2 is out of range"],
        [["--core", "99999999999999999999", cfg.baseDir], "at most 2^53 - 1"],
        [["--core", "1", seg0], "is a segment of core 0"],
      ] as const
    ) {
      const d = await wal("dump", ...args);
      assertEquals(d.code, 2, `${args.join(" ")}: ${d.stdout}${d.stderr}`);
      assertStringIncludes(d.stderr, says);
      assertEquals(d.stdout, "");
    }
    const ok = await wal("dump", "--core", "1", cfg.baseDir);
    assertEquals(ok.code, 0, ok.stderr);
    const lines = ok.stdout.split("\n").filter((l) => l !== "");
    assert(lines.length > 400 && lines.every((l) => l.startsWith("core 1 ")), lines[0]);
  },
});
