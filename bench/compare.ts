// deno task bench:compare [--quick | --tiny] [--runs N] [--only W1,W2] [--no-fio] [--out DIR]
//                         [--data DIR]
//
// Runs every workload on every system (the WAL through PerCoreWalManager with the io_uring and
// the sync backend, the CoreLog engine alone, plain Deno, node:sqlite, and fio for the disk's
// limit), each run in its own process, alternating A B C A B C, and reports medians: a markdown
// table on stdout and in bench/results/compare.md, the JSON in bench/results/latest.json, and the
// chart in docs/bench.svg (bench/chart.ts redraws it from a saved results file). `--quick` is a
// short smoke run for iterating, `--tiny` a tenth of it (the harness's own test,
// tests/bench_compare_test.ts); their outputs go to bench/results/*.tmp (gitignored), or to
// `--out DIR`. Data goes to bench/.data/compare, or `--data DIR` (removed between runs). No row
// waits between open() and its first record; each reports open()'s time and its bytes on disk.
import { parseArgs } from "node:util";
import { fioVersion, runFio } from "./compare/fio.ts";
import {
  bounds,
  goals,
  markdown,
  summarize,
  type SystemSummary,
  type WorkloadSummary,
} from "./compare/report.ts";
import { chartSvg } from "./compare/chart.ts";
import { captionOf, expectedWorkloads } from "./chart.ts";
import { recordBytes, type RunResult, type RunSize, workloads } from "./compare/workloads.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    tiny: { type: "boolean", default: false },
    runs: { type: "string" },
    only: { type: "string" },
    "no-fio": { type: "boolean", default: false },
    out: { type: "string" },
    data: { type: "string" },
  },
});
const size: RunSize = values.tiny ? "tiny" : values.quick ? "quick" : "full";
const quick = size !== "full";
const runs = Number(values.runs ?? (quick ? 1 : 3));
const only = values.only?.split(",");
const here = new URL(".", import.meta.url).pathname;
const DATA = values.data ?? `${here}.data/compare`;
const PERMS = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env", "--allow-run=sh"];

async function sh(cmd: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

function fresh(dir: string): string {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  Deno.mkdirSync(dir, { recursive: true });
  return dir;
}

async function child(wid: string, system: string, dir: string): Promise<RunResult> {
  const args = ["run", ...PERMS, `${here}compare/run.ts`, wid, system, dir];
  if (quick) args.push(`--${size}`);
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `${wid} ${system} failed (exit ${out.code}):\n${text}\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return JSON.parse(text.split("\n").at(-1)!);
}

const fio = values["no-fio"] ? undefined : await fioVersion();
const fioCommands: Record<string, string[]> = {};
const summary: Record<string, WorkloadSummary> = {};
const started = new Date();

for (const w of workloads(size)) {
  if (only !== undefined && !only.includes(w.id)) continue;
  const results: Record<string, RunResult[]> = {};
  const systems = [...w.systems];
  if (w.fio !== undefined && fio !== undefined) systems.push("fio-buffered", "fio-direct");
  if (w.id === "W7") {
    console.error(`W7: writing ${w.cores} x ${w.records} entries`);
    await child(w.id, "setup", fresh(`${DATA}/W7`));
  }
  for (let r = 0; r < runs; r++) {
    for (const s of systems) {
      let res: RunResult;
      if (s.startsWith("fio-")) {
        const f = await runFio(fresh(`${DATA}/fio`), {
          ...w.fio!,
          direct: s === "fio-direct",
          // One record per fdatasync (W2s) is one 4 KiB block (O_DIRECT's smallest write).
          recordsPerBlock: w.batch === 1 ? 1 : w.fio!.bs / recordBytes(w.payloadBytes),
        });
        (fioCommands[w.id] ??= []).includes(f.command) || fioCommands[w.id].push(f.command);
        const { command: _, ...rest } = f;
        res = rest;
      } else {
        res = await child(w.id, s, w.id === "W7" ? `${DATA}/W7` : fresh(`${DATA}/${w.id}-${s}`));
      }
      (results[s] ??= []).push(res);
      console.error(
        `${w.id} run ${r + 1}/${runs} ${s.padEnd(12)} ${
          Math.round(res.recordsPerSec).toLocaleString("en")
        } records/s  ${res.mbPerSec.toFixed(1)} MB/s  (${res.backend})`,
      );
    }
  }
  const systemsSummary: Record<string, SystemSummary> = {};
  for (const [s, rs] of Object.entries(results)) systemsSummary[s] = summarize(rs);
  summary[w.id] = { title: w.title, systems: systemsSummary };
}
fresh(DATA);

const gs = goals(summary);
const table = markdown(summary, gs, bounds(summary));
const command = `deno task bench:compare${Deno.args.length ? " " + Deno.args.join(" ") : ""}`;
const machine = {
  cpus: navigator.hardwareConcurrency,
  cpuModel: await sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
  kernel: await sh("uname -r"),
  memory: await sh("grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2-3"),
  disk: await sh(`df -T ${here} | tail -1 | tr -s ' ' | cut -d' ' -f1,2`),
  load: await sh("cut -d' ' -f1-3 /proc/loadavg"),
};
const date = started.toISOString();
const json = {
  command,
  date,
  finished: new Date().toISOString(),
  runsPerSystem: runs,
  deno: Deno.version.deno,
  fio: fio ??
    (values["no-fio"]
      ? "not run (--no-fio)"
      : "not installed (apt-get install -y fio): disk-limit rows skipped"),
  fioCommands,
  machine,
  notes: [
    "Each system runs in its own process; runs alternate between systems; figures are medians.",
    "MB/s is records/s times the framed record size (key + value + 40 bytes) for every system; fio: the bytes it wrote.",
    "No row waits between open() and its first record (settleMs: the time between them, the disk measurement excluded); openMs is open() alone; W1c's open + records figure counts both.",
    "Bytes on disk are allocated blocks (st_blocks x 512) of the system's directory, right after open() and after the workload (before close).",
    "The machine is a shared 2 vCPU VM and other jobs ran at the same time: figures are noisy.",
  ],
  workloads: summary,
  goals: gs,
  bounds: bounds(summary),
};

const caption = captionOf({ date, machine, runsPerSystem: runs }, quick);
const svg = () => chartSvg(summary, { expected: expectedWorkloads(), caption });
const md =
  `# deno task bench:compare\n\n\`${command}\` on ${date} (${machine.cpus} vCPU, ${machine.cpuModel}, Linux ${machine.kernel}, ${machine.disk}, Deno ${Deno.version.deno}, ${
    fio ?? "no fio"
  }; load average at the end ${machine.load}). Medians of ${runs} runs per system, each in its own process, alternating. Shared, noisy machine.\n\n${table}\n`;
console.log(table);
const results = values.out ?? `${here}results`;
Deno.mkdirSync(results, { recursive: true });
if (quick || only !== undefined) {
  Deno.writeTextFileSync(`${results}/partial.json.tmp`, JSON.stringify(json, null, 2) + "\n");
  Deno.writeTextFileSync(`${results}/partial.md.tmp`, md);
  Deno.writeTextFileSync(`${results}/partial.svg.tmp`, svg());
  console.error(`partial run: wrote ${results}/partial.{json,md,svg}.tmp`);
} else {
  Deno.writeTextFileSync(`${results}/latest.json`, JSON.stringify(json, null, 2) + "\n");
  Deno.writeTextFileSync(`${results}/compare.md`, md);
  Deno.writeTextFileSync(`${here}../docs/bench.svg`, svg());
  console.error("wrote bench/results/latest.json, bench/results/compare.md, docs/bench.svg");
}
