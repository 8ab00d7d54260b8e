// What every laid-out comparison chart must satisfy (tests/bench_chart_test.ts and
// tests/bench_compare_test.ts): no two labels overlap, every value fits its panel's axis, and
// every workload has a bar or a note saying why not.
import { assert, assertGreater } from "@std/assert";
import type { Box, ChartLayout } from "../bench/compare/chart.ts";

const overlap = (a: Box, b: Box) =>
  a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** Fails when a label overlaps, leaves the chart or a bar leaves its panel. */
export function assertSound(l: ChartLayout, ids: string[]): void {
  for (let i = 0; i < l.texts.length; i++) {
    const a = l.texts[i];
    assert(a.box.x >= 0 && a.box.x + a.box.w <= l.width, `"${a.text}" leaves the chart's width`);
    assert(a.box.y >= 0 && a.box.y + a.box.h <= l.height, `"${a.text}" leaves the chart's height`);
    for (let j = i + 1; j < l.texts.length; j++) {
      const b = l.texts[j];
      assert(!overlap(a.box, b.box), `labels "${a.text}" and "${b.text}" overlap`);
    }
    for (const p of l.panels.filter((p) => overlap(a.box, p))) {
      const inside = a.box.x >= p.x && a.box.x + a.box.w <= p.x + p.w && a.box.y >= p.y &&
        a.box.y + a.box.h <= p.y + p.h;
      assert(inside, `label "${a.text}" crosses the frame of panel ${p.workload}`);
    }
    for (const bar of l.bars) {
      assert(!overlap(a.box, bar), `label "${a.text}" overlaps bar ${bar.workload} ${bar.system}`);
    }
  }
  for (const p of l.panels) {
    for (const v of p.values) assert(v <= p.axisMax, `${p.workload}: ${v} beyond ${p.axisMax}`);
    for (const q of l.panels) if (p !== q) assert(!overlap(p, q), `${p.workload} ${q.workload}`);
  }
  for (const bar of l.bars) {
    assert(bar.value <= bar.axisMax, `${bar.workload} ${bar.system} beyond its axis`);
    assertGreater(bar.w, 0, `${bar.workload} ${bar.system} has no visible bar`);
    const panel = l.panels.find((p) => p.workload === bar.workload)!;
    assert(bar.x + bar.w <= panel.x + panel.w, `${bar.workload} ${bar.system} leaves its panel`);
  }
  for (const id of ids) {
    const panel = l.panels.find((p) => p.workload === id);
    if (panel === undefined) throw new Error(`no panel for ${id}`);
    const bars = l.bars.filter((b) => b.workload === id);
    assert(bars.length > 0 || panel.notes.length > 0, `${id} has neither a bar nor a note`);
  }
}
