// deno run --allow-read --allow-write bench/chart.ts [results.json] [out.svg]
//
// Redraws the comparison chart from a saved results file (default bench/results/latest.json,
// written by `deno task bench:compare`) into docs/bench.svg, without rerunning any benchmark.
// bench/compare.ts draws through the same function after a run.
import { chartSvg, type ChartWorkload, type ExpectedWorkload } from "./compare/chart.ts";
import { workloads } from "./compare/workloads.ts";

/** The workloads of bench:compare with the systems each runs (fio rows included). */
export function expectedWorkloads(): ExpectedWorkload[] {
  return workloads("full").map((w) => ({
    id: w.id,
    title: w.title,
    systems: w.fio === undefined ? w.systems : [...w.systems, "fio-buffered", "fio-direct"],
  }));
}

/** The caption of a saved results file: date, machine, runs. */
export function captionOf(
  json: { date: string; machine?: { cpus?: number; kernel?: string }; runsPerSystem?: number },
  quick = false,
): string {
  return `${json.date.slice(0, 16)}Z, ${json.machine?.cpus ?? "?"} vCPU, Linux ${
    json.machine?.kernel ?? "?"
  }, medians of ${json.runsPerSystem ?? "?"} run(s)${quick ? " (quick)" : ""}`;
}

/** The SVG of a saved results file's text. */
export function svgOfResults(text: string): string {
  const json = JSON.parse(text) as {
    date: string;
    command?: string;
    machine?: { cpus?: number; kernel?: string };
    runsPerSystem?: number;
    workloads: Record<string, ChartWorkload>;
  };
  const quick = /--(quick|tiny)\b/.test(json.command ?? "");
  return chartSvg(json.workloads, {
    expected: expectedWorkloads(),
    caption: captionOf(json, quick),
  });
}

if (import.meta.main) {
  const here = new URL(".", import.meta.url).pathname;
  const input = Deno.args[0] ?? `${here}results/latest.json`;
  const output = Deno.args[1] ?? `${here}../docs/bench.svg`;
  Deno.writeTextFileSync(output, svgOfResults(Deno.readTextFileSync(input)));
  console.error(`wrote ${output} from ${input}`);
}
