// The core Workers run src/core_worker.bundle.js (one file, for a shorter start: see
// src/manager.ts, _workerUrl). It must be exactly what `deno task bundle` makes of the sources
// today, or the Workers would run other code than the one tested and reviewed.
import { assert, assertEquals } from "@std/assert";
import { tempDir } from "./_helpers.ts";

const root = new URL("../", import.meta.url);

Deno.test("the core Worker's bundle is what `deno task bundle` makes of the sources", async () => {
  await using tmp = await tempDir();
  const out = `${tmp.path}/core_worker.bundle.js`;
  const made = await new Deno.Command(Deno.execPath(), {
    // The same arguments as the task, from the same directory: the bundle names each module by
    // its path relative to it.
    args: ["bundle", "--quiet", "--platform", "deno", "-o", out, "src/core_worker.ts"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert(made.success, new TextDecoder().decode(made.stderr));
  const fresh = await Deno.readTextFile(out);
  const committed = await Deno.readTextFile(new URL("src/core_worker.bundle.js", root));
  assert(fresh.includes("// src/core_log.ts"), "the bundle holds the engine");
  assertEquals(
    committed === fresh,
    true,
    "src/core_worker.bundle.js is stale: run `deno task bundle` and commit it",
  );
});
