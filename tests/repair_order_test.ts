import { assert, assertEquals } from "@std/assert";
import { listCoreSegments } from "../src/segment_files.ts";
import { HAVE_STRACE, tempDir } from "./_helpers.ts";
import { tailAcrossRotation } from "./_crash_tails.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env"];

/** The index of the first line at or after `from` that matches, or -1. */
function lineIndex(lines: string[], from: number, re: RegExp): number {
  for (let i = from; i < lines.length; i++) if (re.test(lines[i])) return i;
  return -1;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

Deno.test({
  name:
    "repair of a crash tail across a rotation fsyncs the directory after putting segments aside and before the cut",
  ignore: !HAVE_STRACE,
  fn: async () => {
    await using dir = await tempDir();
    const { config, path, holeOffset } = await tailAcrossRotation(dir.path, false);
    const seg1 = config.segmentPath(0, 1);
    const trace = `${dir.path}/trace`;
    // -y names each descriptor's file, to tell the directory's fsync from a segment's.
    const out = await new Deno.Command("strace", {
      args: [
        "-f",
        "-y",
        "-o",
        trace,
        "-e",
        "trace=rename,renameat,renameat2,fsync,fdatasync,ftruncate",
      ]
        .concat([Deno.execPath(), "run", ...PERMS, CLI, "repair", config.baseDir]),
      stdin: "null",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertEquals(Deno.statSync(path).size, holeOffset);
    assertEquals(listCoreSegments(config, 0).map((s) => s.index), [0]);

    const lines = Deno.readTextFileSync(trace).split("\n");
    const rename = lineIndex(lines, 0, new RegExp(`rename.*"${escape(seg1)}".*= 0`));
    assert(rename >= 0, "segment 1 was renamed aside");
    const dirSync = lineIndex(
      lines,
      rename,
      new RegExp(`fsync\\(\\d+<${escape(config.baseDir)}>\\)\\s+= 0`),
    );
    const cut = lineIndex(
      lines,
      0,
      new RegExp(`ftruncate\\(\\d+<${escape(path)}>, ${holeOffset}\\)`),
    );
    assert(cut > rename, `the cut (${cut}) follows the rename (${rename})`);
    assert(
      dirSync > rename && dirSync < cut,
      `the directory is fsynced (${dirSync}) after the rename (${rename}) and before the cut (${cut})`,
    );
    const cutSync = lineIndex(
      lines,
      cut,
      new RegExp(`f(data)?sync\\(\\d+<${escape(path)}>\\)\\s+= 0`),
    );
    assert(cutSync > cut, "the cut segment is fsynced after the cut");
  },
});
