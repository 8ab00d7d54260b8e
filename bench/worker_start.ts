// What bounds open(): the start of the core Workers. Each run is a fresh `deno` process (cold, as
// a user's server or job is), which measures one of:
//   trivial  two Workers of an empty module, until each answered a message
//   modules  two Workers that load the core Worker's modules (src/core_worker.ts), until loaded
//   bundle   the same from the bundle the manager starts (src/core_worker.bundle.js)
//   open     PerCoreWalManager.open() of a fresh 2-core directory (default options)
// and, from the trivial runs, "new Worker": how long the main thread waited in the constructors
// (Deno returns from `new Worker` once the Worker's isolate exists, one Worker after the other),
// and the kinds alternate, so that a drift of this VM's speed hits each alike. Prints the median
// and the range per kind. A measuring script, not a test; docs/PERFORMANCE.md quotes it.
//
// Usage: deno run -A bench/worker_start.ts [--runs 7] [--cores 2]
import { parseArgs } from "@std/cli/parse-args";

const args = parseArgs(Deno.args, {
  string: ["runs", "cores", "child", "dir"],
  default: { runs: "7", cores: "2" },
});
const cores = Number(args.cores);

/** In a child process: the time of one kind, in ms, printed on stdout. */
async function child(kind: string): Promise<void> {
  const t0 = performance.now();
  if (kind === "open") {
    const { PerCoreWalManager } = await import("../mod.ts");
    const t1 = performance.now();
    const m = await PerCoreWalManager.open(args.dir!, { cores });
    console.log(JSON.stringify({ ms: performance.now() - t1 }));
    await m.close();
    return;
  }
  const module = kind === "bundle" ? "core_worker.bundle.js" : "core_worker.ts";
  const code = kind === "trivial"
    ? `self.onmessage = () => self.postMessage(0);`
    : `import ${JSON.stringify(new URL(`../src/${module}`, import.meta.url).href)};
       self.postMessage(0);`;
  const url = `data:application/javascript,${encodeURIComponent(code)}`;
  const done: Promise<unknown>[] = [];
  const workers: Worker[] = [];
  // Deno's Worker constructor returns only once the Worker's isolate exists: the main thread
  // waits there, one Worker after the other.
  let blocked = 0;
  for (let i = 0; i < cores; i++) {
    const c0 = performance.now();
    const w = new Worker(url, { type: "module" });
    blocked += performance.now() - c0;
    workers.push(w);
    done.push(new Promise((r) => w.onmessage = r));
    if (kind === "trivial") w.postMessage(0);
  }
  await Promise.all(done);
  console.log(JSON.stringify({ ms: performance.now() - t0, blocked }));
  for (const w of workers) w.terminate();
}

if (args.child !== undefined) {
  await child(args.child);
  Deno.exit(0);
}

const kinds = ["trivial", "modules", "bundle", "open"];
const times = new Map<string, number[]>([...kinds, "new Worker"].map((k) => [k, []]));
const base = await Deno.makeTempDir({ prefix: "worker_start" });
try {
  for (let r = 0; r < Number(args.runs); r++) {
    for (const kind of kinds) {
      const dir = `${base}/wal-${r}`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          import.meta.filename!,
          "--child",
          kind,
          "--cores",
          args.cores,
          "--dir",
          dir,
        ],
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`the ${kind} run failed`);
      const got = JSON.parse(new TextDecoder().decode(out.stdout));
      times.get(kind)!.push(got.ms);
      if (kind === "trivial") times.get("new Worker")!.push(got.blocked);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
} finally {
  await Deno.remove(base, { recursive: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${cores} Workers, ${args.runs} fresh processes per kind, ms:`);
for (const [kind, xs] of times) {
  console.log(
    `${kind.padEnd(8)} median ${median(xs).toFixed(1).padStart(6)}  range ${
      Math.min(...xs).toFixed(1)
    }-${Math.max(...xs).toFixed(1)}`,
  );
}
