// The README's quick start is an app a newcomer saves and runs: its two files, taken from the
// README as they are, run in a fresh directory (with "@percore/wal" mapped to this checkout) and
// do what the README says, twice (the second run reopens what the first left).
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

const README = new URL("../README.md", import.meta.url);

/** The README's `ts` code blocks whose first line is `// <name>`, by name. */
function quickStartFiles(): Map<string, string> {
  const text = Deno.readTextFileSync(README);
  const files = new Map<string, string>();
  for (const m of text.matchAll(/```ts\n(\/\/ ([\w.]+)\n[\s\S]*?)```/g)) files.set(m[2], m[1]);
  return files;
}

Deno.test({
  name: "the README's quick start (main.ts + worker.ts) runs as written, and again on its own data",
  ignore: ignoreWithoutUring,
  async fn() {
    const files = quickStartFiles();
    assertEquals([...files.keys()].sort(), ["main.ts", "worker.ts"]);
    assert(Deno.readTextFileSync(README).split("\n").length <= 250, "the README stays short");
    await using dir = await tempDir();
    for (const [name, code] of files) Deno.writeTextFileSync(`${dir.path}/${name}`, code);
    const mod = new URL("../mod.ts", import.meta.url).href;
    Deno.writeTextFileSync(
      `${dir.path}/deno.json`,
      JSON.stringify({ imports: { "@percore/wal": mod } }),
    );
    for (const run of [1, 2]) {
      // The command the README gives.
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", "--allow-ffi", "--allow-env", "main.ts"],
        cwd: dir.path,
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, `run ${run}: ${stdout}${stderr}`);
      assertStringIncludes(stdout, "alice 42", `run ${run}: the recovered state`);
      assertStringIncludes(stdout, `checkpoint ${run} at epoch`, `run ${run}`);
      assertStringIncludes(stdout, "0 1 put", `run ${run}: watch from sequence 1`);
    }
  },
});
