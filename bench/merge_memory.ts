// Peak RSS of W7's merge against the size of the log: WALs of 2 cores x N entries (W7's records:
// 16-byte keys, 112-byte values, sync() every 512), each merged by `bench/compare/run.ts W7 merge`
// in a process of its own (VmHWM, as the comparison reports it), a few times.
// Usage: deno run -A bench/merge_memory.ts [dir] [runs] [entries per core ...]
//   e.g. deno run -A bench/merge_memory.ts /tmp/w7mem 3 100000 1000000 2000000
import { PerCoreWalConfig, PerCoreWalManager } from "../mod.ts";

const [root = "/tmp/w7mem", runsArg = "3", ...sizesArg] = Deno.args;
const runs = Number(runsArg);
const sizes = sizesArg.length > 0 ? sizesArg.map(Number) : [100_000, 1_000_000, 2_000_000];
const keys = Array.from(
  { length: 512 },
  (_, i) => new TextEncoder().encode(`key-${String(i).padStart(12, "0")}`),
);
const value = new Uint8Array(112).fill(0x5a);

/** Writes 2 cores x `n` puts as W7's setup does (batches of 512, 8 sync() in flight per core). */
async function write(dir: string, n: number): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const manager = await PerCoreWalManager.open(new PerCoreWalConfig(dir, 2));
  try {
    const logs = [manager.writer(0), manager.writer(1)];
    const pending: Promise<void>[] = [];
    for (let i = 0; i < n; i += 512) {
      const k = Math.min(512, n - i);
      for (const log of logs) {
        for (let j = 0; j < k; j++) log.appendPut(keys[(i + j) & 511], value);
        pending.push(log.sync());
      }
      while (pending.length >= 16) await pending.shift();
    }
    await Promise.all(pending);
  } finally {
    await manager.close();
  }
}

const run = new URL("./compare/run.ts", import.meta.url).pathname;
console.log("| entries (2 cores) | entries/s | peak RSS |");
console.log("|---|---|---|");
for (const n of sizes) {
  const dir = `${root}/${n}`;
  await write(dir, n);
  for (let r = 0; r < runs; r++) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", run, "W7", "merge", dir],
      stdout: "piped",
    }).output();
    if (!out.success) throw new Error(`merge of ${dir} failed`);
    const res = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    console.log(
      `| ${res.records} | ${(res.recordsPerSec / 1e6).toFixed(2)}M | ` +
        `${(res.peakRssBytes / 1048576).toFixed(0)} MiB |`,
    );
  }
  await Deno.remove(dir, { recursive: true });
}
