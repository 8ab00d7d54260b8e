// The read side stands alone (docs/ARCHITECTURE.md, "Layers"): reading, merging, checkpointing and
// recovering a directory must not load the writer engine or the io_uring binding. The import
// graph comes from `deno info --json`; only imports that load code count (an `import type` is
// erased before the module runs).
import { assertEquals } from "@std/assert";

const READ_SIDE = [
  "src/reader.ts",
  "src/merge.ts",
  "src/merge_stream.ts",
  "src/segment_files.ts",
  "src/recovery.ts",
  "src/checkpoint.ts",
  "src/checkpoint_store.ts",
  "src/damage_table.ts",
  "src/segment_probes.ts",
  "src/crash_tail.ts",
  "src/open_recovery.ts",
  "src/cli/scan.ts",
  "src/cli/tail.ts",
  "src/watch.ts",
  "src/cli/repair.ts",
  "src/cli/dump.ts",
  "src/ship_marks.ts",
  "src/ship_retention.ts",
  "src/cli/shippers.ts",
  "src/ship/shipper.ts",
  "src/ship/read.ts",
];
const ENGINE = ["src/core_log.ts", "src/io/uring.ts", "src/io/ring.ts"];

const ROOT = new URL("../", import.meta.url);

interface ModuleInfo {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
}

/**
 * Every module that loading `file` runs, each with the module that imported it first. A dynamic
 * `import()` runs only when its code does: it is followed only with `dynamic`.
 */
async function runtimeImports(
  file: string,
  dynamic = false,
): Promise<Map<string, string | undefined>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL(file, ROOT).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: ModuleInfo[];
  };
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  const importedBy = new Map<string, string | undefined>([[info.roots[0], undefined]]);
  const todo = [info.roots[0]];
  while (todo.length > 0) {
    const from = todo.pop()!;
    for (const d of modules.get(from)?.dependencies ?? []) {
      const to = d.code?.specifier;
      if (to === undefined || importedBy.has(to) || (d.isDynamic && !dynamic)) continue;
      importedBy.set(to, from);
      todo.push(to);
    }
  }
  return importedBy;
}

/** `a <- b <- root`: how `specifier` is reached. */
function chain(importedBy: Map<string, string | undefined>, specifier: string): string {
  const names: string[] = [];
  for (let s: string | undefined = specifier; s !== undefined; s = importedBy.get(s)) {
    names.push(s.slice(ROOT.href.length));
  }
  return names.join(" <- ");
}

for (const file of READ_SIDE) {
  Deno.test(`${file} loads neither core_log.ts nor io/uring.ts`, async () => {
    const importedBy = await runtimeImports(file);
    const engine = ENGINE.map((f) => new URL(f, ROOT).href).filter((s) => importedBy.has(s));
    assertEquals(engine.map((s) => chain(importedBy, s)), []);
  });
}

// The core module keeps no runtime dependency: only `ship.ts` brings the NATS client.
for (const file of ["mod.ts", "cli.ts"]) {
  Deno.test(`${file} loads no npm package (only ship.ts does)`, async () => {
    const importedBy = await runtimeImports(file);
    const npm = [...importedBy.keys()].filter((s) => s.startsWith("npm:"));
    assertEquals(npm.map((s) => chain(importedBy, s)), []);
  });
}

Deno.test("cli.ts reaches the NATS client only by the dynamic import of `wal ship`", async () => {
  const importedBy = await runtimeImports("cli.ts", true);
  const nats = [...importedBy.keys()].find((s) => s.startsWith("npm:@nats-io/"));
  assertEquals(nats !== undefined && chain(importedBy, nats).includes("src/cli/ship.ts"), true);
});

Deno.test("ship.ts loads the NATS client (the check above can fail)", async () => {
  const importedBy = await runtimeImports("ship.ts");
  assertEquals([...importedBy.keys()].some((s) => s.startsWith("npm:@nats-io/")), true);
});
