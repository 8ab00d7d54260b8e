// The comparison's outputs: the markdown table and the goal status (the chart: chart.ts).
import type { RunResult } from "./workloads.ts";

/** One system on one workload over its runs (see {@linkcode summarize}), and the runs themselves. */
export interface SystemSummary extends RunResult {
  runs: RunResult[];
}

/** Per workload: title and systems. */
export interface WorkloadSummary {
  title: string;
  systems: Record<string, SystemSummary>;
}

/** One goal (issues 5 and 15) and where it stands. */
export interface Goal {
  workload: string;
  goal: string;
  value: number | undefined;
  target: number;
  /** "max": the value must not exceed the target (a cost); otherwise reach it. */
  bound?: "min" | "max";
  met: boolean | undefined;
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Over the runs of one system: the median of records/s, MB/s, seconds, peak RSS and CPU. The
 * latency percentiles, the backend and the note are those of one run, the one whose rate is the
 * median (the nearer one for an even count): a system that picks the better of two variants (plain
 * Deno) may pick a different one in each run, and their latencies measure different things.
 */
export function summarize(runs: RunResult[]): SystemSummary {
  const num = (f: (r: RunResult) => number | undefined) => {
    const xs = runs.map(f).filter((x): x is number => x !== undefined);
    return xs.length === 0 ? undefined : median(xs);
  };
  const rate = num((r) => r.recordsPerSec)!;
  const mid = runs.reduce((a, b) =>
    Math.abs(b.recordsPerSec - rate) < Math.abs(a.recordsPerSec - rate) ? b : a
  );
  return {
    records: num((r) => r.records)!,
    seconds: num((r) => r.seconds)!,
    recordsPerSec: rate,
    mbPerSec: num((r) => r.mbPerSec)!,
    p50Us: mid.p50Us,
    p99Us: mid.p99Us,
    peakRssBytes: num((r) => r.peakRssBytes)!,
    cpuNsPerRecord: num((r) => r.cpuNsPerRecord),
    openMs: num((r) => r.openMs),
    // The longest pause of any run: a single run that waited must show.
    settleMs: runs.some((r) => r.settleMs !== undefined)
      ? Math.max(...runs.map((r) => r.settleMs ?? 0))
      : undefined,
    diskAfterOpenBytes: num((r) => r.diskAfterOpenBytes),
    diskAfterRunBytes: num((r) => r.diskAfterRunBytes),
    backend: mid.backend,
    note: mid.note,
    runs,
  };
}

const rate = (s: SystemSummary | undefined) => s?.recordsPerSec;

/**
 * Records/s counting `open()` too (W1c's "open + records" figure): what a user who opens and
 * writes at once sees.
 */
export function openPlusRate(s: RunResult | undefined): number | undefined {
  if (s?.openMs === undefined) return undefined;
  return s.records / (s.seconds + s.openMs / 1000);
}
const div = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

/** The goals of issues 5 and 15, evaluated on medians measured in the same run. */
export function goals(ws: Record<string, WorkloadSummary>): Goal[] {
  const s = (w: string, sys: string) => ws[w]?.systems[sys];
  const g = (workload: string, goal: string, value: number | undefined, target: number): Goal => ({
    workload,
    goal,
    value,
    target,
    met: value === undefined ? undefined : value >= target,
  });
  return [
    g("W1", "wal-uring / plain", div(rate(s("W1", "wal-uring")), rate(s("W1", "plain"))), 3),
    g("W1", "wal-uring / sqlite", div(rate(s("W1", "wal-uring")), rate(s("W1", "sqlite"))), 15),
    g("W2", "wal-uring / plain", div(rate(s("W2", "wal-uring")), rate(s("W2", "plain"))), 1.3),
    g("W2s", "wal-uring / plain", div(rate(s("W2s", "wal-uring")), rate(s("W2s", "plain"))), 1.3),
    g(
      "W3",
      "wal-uring W3 / plain W2s",
      div(rate(s("W3", "wal-uring")), rate(s("W2s", "plain"))),
      30,
    ),
    g(
      "W4",
      "wal-uring MB/s / fio O_DIRECT MB/s",
      div(s("W4", "wal-uring")?.mbPerSec, s("W4", "fio-direct")?.mbPerSec),
      0.5,
    ),
    g("W5", "wal-uring W5 / W1", div(rate(s("W5", "wal-uring")), rate(s("W1", "wal-uring"))), 1.6),
    g("W6", "wal-uring appends/s (millions)", div(rate(s("W6", "wal-uring")), 1e6), 4),
    {
      workload: "W6",
      goal: "wal-uring CPU ns per record, all threads",
      value: s("W6", "wal-uring")?.cpuNsPerRecord,
      target: 250,
      bound: "max",
      met: s("W6", "wal-uring")?.cpuNsPerRecord === undefined
        ? undefined
        : s("W6", "wal-uring")!.cpuNsPerRecord! <= 250,
    },
    g("W7", "merge entries/s (millions)", div(rate(s("W7", "merge")), 1e6), 2),
    // Issue 15: a cold start, the competent group commit, and what a fresh manager costs.
    g(
      "W1c",
      "cold wal-uring / plain",
      div(rate(s("W1c", "wal-uring")), rate(s("W1c", "plain"))),
      1.5,
    ),
    g(
      "W1c",
      "open + records, wal-uring / plain",
      div(openPlusRate(s("W1c", "wal-uring")), openPlusRate(s("W1c", "plain"))),
      1.5,
    ),
    g(
      "W3",
      "wal-uring / competent plain group commit",
      div(rate(s("W3", "wal-uring")), rate(s("W3", "plain"))),
      4,
    ),
    atMost("W5", "open() of a fresh 2-core manager, ms", s("W5", "wal-uring")?.openMs, 30),
    atMost(
      "W5",
      "disk of a fresh 2-core manager, MiB",
      mib(s("W5", "wal-uring")?.diskAfterOpenBytes),
      16,
    ),
  ];
}

/** A limit this machine sets on a goal, measured in the same run. */
export interface Bound {
  workload: string;
  what: string;
  value: number | undefined;
  /** The goal the bound is about. */
  goal: number;
}

/**
 * What the disk and the kernel allow the goals of W1 and W3 here, from rows of the same run:
 * W1's shape through a bare io_uring loop (no encoding, no threads), against plain Deno; and for
 * W3, the producers (each awaits its record, so a durable round holds at most one of each) times
 * the rounds fio's own loop of one 4 KiB write + fdatasync at a time completes per second (W2s's
 * fio row), against the competent group commit.
 */
export function bounds(ws: Record<string, WorkloadSummary>): Bound[] {
  const s = (w: string, sys: string) => ws[w]?.systems[sys];
  const fioRounds = rate(s("W2s", "fio-direct"));
  const producers = 64;
  const w3Max = fioRounds === undefined ? undefined : producers * fioRounds;
  return [
    {
      workload: "W1",
      what: "bare io_uring loop / plain (W1's ceiling here)",
      value: div(rate(s("W1", "ring-raw")), rate(s("W1", "plain"))),
      goal: 3,
    },
    {
      workload: "W3",
      what: `${producers} producers × fio's 4 KiB write + fdatasync rounds/s, / competent plain`,
      value: div(w3Max, rate(s("W3", "plain"))),
      goal: 4,
    },
  ];
}

const mib = (bytes: number | undefined) => bytes === undefined ? undefined : bytes / 2 ** 20;

function atMost(workload: string, goal: string, value: number | undefined, target: number): Goal {
  const met = value === undefined ? undefined : value <= target;
  return { workload, goal, value, target, bound: "max", met };
}

const fmtMiB = (bytes: number | undefined) =>
  bytes === undefined ? "" : `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 1)} MiB`;
const fmtMs = (x: number | undefined) =>
  x === undefined ? "" : x >= 10 ? `${x.toFixed(0)} ms` : `${x.toFixed(2)} ms`;

const fmtRate = (x: number) =>
  x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
const fmtUs = (x: number | undefined) =>
  x === undefined ? "" : x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(0)} µs`;

/** The markdown table: one row per workload and system, ratio against plain Deno. */
export function markdown(
  ws: Record<string, WorkloadSummary>,
  gs: Goal[],
  bs: Bound[] = [],
): string {
  const lines = [
    "| workload | system | backend | records/s | MB/s | p50 | p99 | peak RSS | vs plain |",
    "|---|---|---|--:|--:|--:|--:|--:|--:|",
  ];
  for (const [id, w] of Object.entries(ws)) {
    const plain = w.systems.plain?.recordsPerSec;
    for (const [name, s] of Object.entries(w.systems)) {
      const ratio = plain === undefined ? "" : `${(s.recordsPerSec / plain).toFixed(2)}×`;
      const rss = s.peakRssBytes > 0 ? `${(s.peakRssBytes / 2 ** 20).toFixed(0)} MiB` : "";
      lines.push(
        `| ${id} | ${name} | ${s.backend} | ${fmtRate(s.recordsPerSec)} | ${
          s.mbPerSec.toFixed(1)
        } | ${fmtUs(s.p50Us)} | ${fmtUs(s.p99Us)} | ${rss} | ${ratio} |`,
      );
    }
  }
  lines.push(
    "",
    "Open, pause and footprint (`open()` alone; the pause between it and the first record, which",
    "is no wait, only the time to start the loop; allocated bytes of the directory after `open()`",
    "and after the workload; W1c: records/s counting `open()` too):",
    "",
    "| workload | system | open() | pause | disk after open | disk after run | open + records |",
    "|---|---|--:|--:|--:|--:|--:|",
  );
  for (const [id, w] of Object.entries(ws)) {
    const plainOpen = openPlusRate(w.systems.plain);
    for (const [name, s] of Object.entries(w.systems)) {
      if (s.openMs === undefined && s.diskAfterRunBytes === undefined) continue;
      const op = id === "W1c" ? openPlusRate(s) : undefined;
      const opText = op === undefined
        ? ""
        : `${fmtRate(op)}${plainOpen === undefined ? "" : ` (${(op / plainOpen).toFixed(2)}×)`}`;
      lines.push(
        `| ${id} | ${name} | ${fmtMs(s.openMs)} | ${fmtMs(s.settleMs)} | ${
          fmtMiB(s.diskAfterOpenBytes)
        } | ${fmtMiB(s.diskAfterRunBytes)} | ${opText} |`,
      );
    }
  }
  lines.push("", "| goal | measured | target | status |", "|---|--:|--:|---|");
  for (const g of gs) {
    const v = g.value === undefined ? "n/a" : g.value.toFixed(2);
    const st = g.met === undefined ? "not measured" : g.met ? "met" : "NOT met";
    lines.push(
      `| ${g.workload}: ${g.goal} | ${v} | ${g.bound === "max" ? "≤" : "≥"} ${g.target} | ${st} |`,
    );
  }
  if (bs.length > 0) {
    lines.push(
      "",
      "What this machine allows (a goal above its bound cannot be met here by any code):",
      "",
      "| bound | measured | goal |",
      "|---|--:|--:|",
    );
    for (const b of bs) {
      const v = b.value === undefined ? "n/a" : `${b.value.toFixed(2)}×`;
      lines.push(`| ${b.workload}: ${b.what} | ${v} | ${b.goal}× |`);
    }
  }
  return lines.join("\n");
}
