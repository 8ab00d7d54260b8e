// `deno task bench:compare` end to end on tiny sizes (bench/compare.ts and bench/compare/*): every
// workload and system runs in its own process and lands in the results, with open() timed, the
// bytes on disk and no pause between open() and the first record; the chart lays the new rows out.
// Nothing here asserts a speed: the runs are far too small to mean anything.
import { assert, assertEquals, assertGreater, assertStringIncludes } from "@std/assert";
import { ignoreWithoutUring, runDeno, tempDir } from "./_helpers.ts";
import { assertSound } from "./_chart_sound.ts";
import { layoutChart } from "../bench/compare/chart.ts";
import { expectedWorkloads, svgOfResults } from "../bench/chart.ts";
import type { Bound, Goal, WorkloadSummary } from "../bench/compare/report.ts";
import { workloads } from "../bench/compare/workloads.ts";

const COMPARE = new URL("../bench/compare.ts", import.meta.url).pathname;
const PERMS = [
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
];
/** Systems that open a WAL: their rows must not wait between open() and the first record. */
const WAL_ROWS = ["wal-uring", "wal-sync", "engine"];
/** The old settle pause was 1,500 ms; a loop that starts at once takes well under a millisecond. */
const PAUSE_BOUND_MS = 500;

Deno.test({
  name: "bench:compare --tiny runs every workload and system, timing open() with no pause",
  ignore: ignoreWithoutUring,
  async fn() {
    await using out = await tempDir();
    await using data = await tempDir();
    const run = await runDeno(
      [
        "run",
        ...PERMS,
        COMPARE,
        "--tiny",
        "--no-fio",
        "--out",
        out.path,
        "--data",
        `${data.path}/compare`,
      ],
      600_000,
    );
    assertEquals(run.code, 0, run.stderr);
    const text = Deno.readTextFileSync(`${out.path}/partial.json.tmp`);
    const json = JSON.parse(text) as {
      command: string;
      workloads: Record<string, WorkloadSummary>;
      goals: Goal[];
      bounds: Bound[];
    };
    assertStringIncludes(json.command, "--tiny");

    for (const w of workloads("tiny")) {
      const got = json.workloads[w.id];
      assert(got !== undefined, `${w.id} missing from the results`);
      const systems = w.id === "W7" ? ["merge", "recovery"] : w.systems;
      assertEquals(Object.keys(got.systems).sort(), [...systems].sort(), w.id);
      if (w.id === "W7") continue;
      const payload = w.records * w.cores * w.payloadBytes;
      for (const [name, s] of Object.entries(got.systems)) {
        const at = `${w.id} ${name}`;
        assertGreater(s.recordsPerSec, 0, at);
        assert(s.openMs !== undefined && s.openMs > 0, `${at}: open() not timed`);
        const pauseMs = s.settleMs ?? Infinity; // absent: no pause recorded
        assert(
          pauseMs < PAUSE_BOUND_MS,
          `${at}: ${pauseMs} ms between open() and the first record`,
        );
        assert(s.diskAfterOpenBytes !== undefined, `${at}: no bytes on disk after open()`);
        // Whatever the layout, the keys and values written are on disk (sqlite's W6 commits its
        // transaction after the timed loop, before the measurement).
        assert(
          s.diskAfterRunBytes !== undefined && s.diskAfterRunBytes >= payload,
          `${at}: ${s.diskAfterRunBytes} bytes on disk after writing ${payload}`,
        );
      }
      for (const name of WAL_ROWS.filter((n) => got.systems[n] !== undefined)) {
        // A WAL holds at least its first segment from the moment open() returns.
        assertGreater(got.systems[name].diskAfterOpenBytes!, 0, `${w.id} ${name}`);
      }
    }

    // W3's baseline is the competent group commit; the naive one is kept, named so.
    assertStringIncludes(json.workloads.W3.systems.plain.backend, "group commit");
    assertStringIncludes(json.workloads.W3.systems["plain-naive"].backend, "per producer");
    // The cold row's plain Deno runs its first loop only, as cold as the WAL.
    assertEquals(json.workloads.W1c.systems.plain.backend, "Deno.FsFile writeSync");

    const goal = (g: string) => json.goals.find((x) => x.goal === g);
    for (
      const g of [
        "cold wal-uring / plain",
        "open + records, wal-uring / plain",
        "wal-uring / competent plain group commit",
        "open() of a fresh 2-core manager, ms",
        "disk of a fresh 2-core manager, MiB",
      ]
    ) {
      assert(goal(g)?.value !== undefined, `goal "${g}" not evaluated`);
    }

    // W1's ceiling (a bare io_uring loop) is measured in the same run; W3's needs fio.
    assertGreater(json.bounds.find((b) => b.workload === "W1")?.value ?? 0, 0);
    assertStringIncludes(json.workloads.W1.systems["ring-raw"].backend, "bare io_uring loop");

    const md = Deno.readTextFileSync(`${out.path}/partial.md.tmp`);
    assertStringIncludes(md, "| W1c | wal-uring |");
    assertStringIncludes(md, "| W3 | plain-naive |");
    assertStringIncludes(md, "open + records");

    // The chart lays the new rows out like the others.
    const expected = expectedWorkloads();
    const l = layoutChart(json.workloads, { expected, caption: "tiny" });
    assertSound(l, expected.map((e) => e.id));
    assert(l.bars.some((b) => b.workload === "W1c" && b.system === "wal-uring"));
    assert(l.bars.some((b) => b.workload === "W3" && b.system === "plain-naive"));
    assertStringIncludes(svgOfResults(text), "(quick)");
  },
});

Deno.test("bench:compare: no pause in the code of any timed path", () => {
  // The settle pause the comparison used to take after open() (for the background zero-fill of
  // the next segment) hid the cost of a cold start; none may come back in the run or the driver.
  for (const file of ["compare.ts", "compare/run.ts", "compare/plain.ts", "compare/report.ts"]) {
    const source = Deno.readTextFileSync(new URL(`../bench/${file}`, import.meta.url));
    const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    for (
      const pause of [/setTimeout/, /\bsettle\s*\(/, /\bdelay\s*\(/, /\bsleep/, /Atomics\.wait/]
    ) {
      assert(!pause.test(code), `bench/${file} pauses: ${pause}`);
    }
  }
});
