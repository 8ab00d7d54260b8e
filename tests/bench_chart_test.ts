// The comparison chart's layout (bench/compare/chart.ts): no two labels overlap, every value fits
// its panel's axis, and every workload has a bar or a note saying why not.
import { assert, assertEquals, assertGreater } from "@std/assert";
import { assertSound } from "./_chart_sound.ts";
import {
  type ChartWorkload,
  fmtRatio,
  layoutChart,
  niceStep,
  renderSvg,
  textWidth,
  wrap,
} from "../bench/compare/chart.ts";
import { expectedWorkloads, svgOfResults } from "../bench/chart.ts";

Deno.test("bench chart: the saved results lay out with no overlap, every workload drawn", () => {
  const text = Deno.readTextFileSync(new URL("../bench/results/latest.json", import.meta.url));
  const json = JSON.parse(text) as { workloads: Record<string, ChartWorkload> };
  const expected = expectedWorkloads();
  const l = layoutChart(json.workloads, { expected, caption: "a caption" });
  assertSound(l, expected.map((e) => e.id));
  // The baseline is a bar like the others, and W7 (no plain Deno) is drawn, its note says why.
  const plain = l.bars.find((b) => b.workload === "W1" && b.system === "plain")!;
  assertGreater(plain.w, 10);
  assert(l.bars.some((b) => b.workload === "W7"));
  assert(l.panels.find((p) => p.workload === "W7")!.notes.some((n) => n.includes("No ratios")));
  // The axis is linear and bounded by the data: at most one tick step beyond the largest value.
  for (const p of l.panels.filter((p) => p.values.length > 0)) {
    assert(p.axisMax < 2.6 * Math.max(...p.values), `${p.workload}: axis ${p.axisMax} too long`);
  }
  const svg = svgOfResults(text);
  assert(svg.startsWith("<svg") && svg.includes("W7: merge and recovery"));
});

Deno.test("bench chart: long names, many rows, missing workloads and zeros never collide", () => {
  const long = (i: number) => `a-contestant-with-a-very-long-name-number-${i}`;
  const ws: Record<string, ChartWorkload> = {};
  for (let w = 0; w < 9; w++) {
    const systems: Record<string, { recordsPerSec: number }> = {};
    for (let s = 0; s < 14; s++) systems[long(s)] = { recordsPerSec: s === 3 ? 0 : 10 ** (s % 9) };
    if (w % 2 === 0) systems.plain = { recordsPerSec: 123_456_789 };
    ws[`W${w}`] = { title: `workload ${w} `.repeat(w + 1), systems };
  }
  const expected = [...Object.keys(ws), "W-missing"].map((id) => ({
    id,
    title: "expected but absent ".repeat(3),
    systems: [long(0), "sqlite", "plain"],
  }));
  for (const columns of [1, 2, 3]) {
    const l = layoutChart(ws, { expected, columns, caption: "x ".repeat(300) });
    assertSound(l, expected.map((e) => e.id));
    assertEquals(l.panels.length, expected.length);
    const missing = l.panels.find((p) => p.workload === "W-missing")!;
    assert(missing.notes[0].includes("Not in this results file"));
    assert(l.panels.find((p) => p.workload === "W1")!.notes.some((n) => n.includes("sqlite")));
    assert(renderSvg(l).includes("a-contestant-with-a-very-long-name-number-13"));
  }
});

Deno.test("bench chart: ticks, wrapping and widths", () => {
  assertEquals(niceStep(4_075_102, 5), 1_000_000);
  assertEquals(niceStep(19.85, 8), 2.5);
  assertEquals([18.16, 1.454, 0.001, 0].map(fmtRatio), ["18.2×", "1.45×", "<0.01×", "0×"]);
  for (const line of wrap("word ".repeat(50) + "x".repeat(80), 11, 200)) {
    assert(textWidth(line, 11) <= 200, line);
  }
});
