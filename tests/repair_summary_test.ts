// `wal repair`'s summary counts what it did to the files: segments put aside and segments cut,
// compared here with the directory before and after (issue 18: a pointInTime repair said
// "2 change(s) applied" while it moved 12 segments aside).
import { assert, assertEquals, assertMatch } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function wal(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-ffi", "--allow-env", CLI, ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Segment file names and sizes, and the names put aside. */
function files(dir: string): { segments: Map<string, number>; aside: string[] } {
  const segments = new Map<string, number>();
  const aside: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.endsWith(".log")) segments.set(e.name, Deno.statSync(`${dir}/${e.name}`).size);
    else if (/\.log\.damaged-/.test(e.name)) aside.push(e.name);
  }
  return { segments, aside };
}

Deno.test({
  name:
    "wal repair --mode pointInTime: the summary counts the segments put aside and cut, as found on disk",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    // Four epochs on two cores with small segments: several segments per core and epoch.
    const cfg = new PerCoreWalConfig(`${dir.path}/wal`, 2, { segmentSizeBytes: 32 * 1024 });
    const m = await PerCoreWalManager.open(cfg);
    try {
      for (let r = 0; r < 4; r++) {
        for (let i = 0; i < 400; i++) m.writer(i % 2).appendPut(`k:${r}:${i}`, `value ${r}.${i}`);
        m.advanceEpoch();
        m.writeEpochBarrierAll();
        await m.syncAll();
      }
    } finally {
      await m.close();
    }
    // A bit flipped in a record of epoch 1 on core 1: pointInTime stops every core before it.
    let victim: { path: string; offset: number } | undefined;
    for (const s of listCoreSegments(cfg, 1)) {
      await using r = await PerCoreWalReader.open(s.path);
      let n = 0;
      for (let x = await r.readNext(); x.kind === "entry"; x = await r.readNext()) {
        if (x.entry.epoch === 1 && ++n === 10) victim = { path: s.path, offset: x.offset };
      }
      if (victim !== undefined) break;
    }
    if (victim === undefined) throw new Error("no record of epoch 1 on core 1");
    const b = Deno.readFileSync(victim.path);
    b[victim.offset + 40] ^= 0x10;
    Deno.writeFileSync(victim.path, b);

    const before = files(cfg.baseDir);
    const r = await wal("repair", cfg.baseDir, "--mode", "pointInTime");
    assertEquals(r.code, 0, r.stderr);
    const after = files(cfg.baseDir);
    const putAside = [...before.segments.keys()].filter((n) => !after.segments.has(n)).length;
    const cut = [...after.segments].filter(([n, size]) => size < before.segments.get(n)!).length;
    assertEquals(after.aside.length - before.aside.length, putAside);
    assert(putAside >= 4, `${putAside} segments put aside: the test needs several`);
    assertMatch(
      r.stdout,
      new RegExp(`repaired: ${putAside} segment\\(s\\) put aside, ${cut} segment\\(s\\) cut`),
    );
  },
});
