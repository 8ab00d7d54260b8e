// The comparison chart (docs/bench.svg): one panel per workload, a horizontal bar of records/s
// per system on a linear axis of that panel's own range, plain Deno's rate as a dashed reference
// line, and each bar labelled with its rate and its ratio to plain Deno. Systems or workloads
// that were not measured are named in a note in their panel, with the reason.
//
// The layout is computed first as boxes (pure, tested by tests/bench_chart_test.ts: no two
// labels overlap, every value fits its axis, every workload has a bar or a note), then written as
// SVG. No dependencies; bench/chart.ts redraws the SVG from a saved results file.

/** What the chart needs of one system's result. */
export interface ChartSystem {
  recordsPerSec: number;
}

/** What the chart needs of one workload's results. */
export interface ChartWorkload {
  title: string;
  systems: Record<string, ChartSystem>;
}

/** A workload the chart expects, and the systems it expects in it. */
export interface ExpectedWorkload {
  id: string;
  title: string;
  systems: string[];
}

/** A label, positioned by its baseline; `box` is its estimated extent, used by the test. */
export interface TextItem {
  x: number;
  y: number;
  text: string;
  sizePx: number;
  anchor: "start" | "middle" | "end";
  bold?: boolean;
  fill?: string;
  box: Box;
}

/** An axis-aligned rectangle. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** One bar: a system's rate in a workload's panel. */
export interface BarItem extends Box {
  workload: string;
  system: string;
  value: number;
  axisMax: number;
  fill: string;
}

/** A straight line (grid, axis, reference). */
export interface LineItem {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  stroke: string;
  dash?: boolean;
}

/** One workload's panel: where it is, its axis, and what was not measured in it. */
export interface PanelItem extends Box {
  workload: string;
  axisMax: number;
  values: number[];
  notes: string[];
}

/** The whole chart, laid out. */
export interface ChartLayout {
  width: number;
  height: number;
  texts: TextItem[];
  bars: BarItem[];
  lines: LineItem[];
  panels: PanelItem[];
}

/** Colours of the known systems; others get a neutral one. */
export const COLORS: Record<string, string> = {
  "wal-uring": "#1f77b4",
  "wal-sync": "#6baed6",
  engine: "#9467bd",
  plain: "#7f7f7f",
  "plain-naive": "#c7c7c7",
  sqlite: "#ff7f0e",
  "fio-buffered": "#98df8a",
  "fio-direct": "#2ca02c",
  "ring-raw": "#17becf",
  merge: "#1f77b4",
  recovery: "#6baed6",
};

/** Why a system is absent from a workload, where the comparison leaves it out on purpose. */
export const ABSENCE_REASONS: Record<string, string> = {
  "W3 sqlite": "node:sqlite is synchronous, so 64 producers would commit one by one (that is W2s)",
  "W1c fio": "fio has no open() and no cold start to compare with",
  "W3 fio": "fio has no equivalent of 64 waiters sharing one fdatasync",
  "W4 engine": "W4 measures bandwidth through the public API only",
  "W5 engine": "the engine alone has no multi-core manager",
  "W5 sqlite": "one node:sqlite database has one writer",
  "W6 fio": "no fdatasync in W6, so no disk limit to compare with",
  "W7 all": "merge and recovery read the WAL; plain Deno, node:sqlite and fio have no counterpart",
};

const CHAR_EM = 0.62; // a generous average glyph width of sans-serif, in em
const FONT = 12;
const NOTE_FONT = 11;
const ROW_H = 20;
const BAR_H = 13;
const PAD = 12;
const BAR_AREA = 300;
const GAP = 24;

/** Estimated width in pixels of `text` at `sizePx` (generous, so estimates do not undercount). */
export function textWidth(text: string, sizePx: number, bold = false): number {
  return [...text].length * sizePx * CHAR_EM * (bold ? 1.08 : 1);
}

function textItem(
  x: number,
  y: number,
  text: string,
  sizePx: number,
  anchor: TextItem["anchor"],
  extra: { bold?: boolean; fill?: string } = {},
): TextItem {
  const w = textWidth(text, sizePx, extra.bold);
  const left = anchor === "start" ? x : anchor === "middle" ? x - w / 2 : x - w;
  return {
    x,
    y,
    text,
    sizePx,
    anchor,
    ...extra,
    box: { x: left, y: y - sizePx, w, h: sizePx * 1.25 },
  };
}

/** Records/s as 1.86M, 143.2k or 950. */
export function fmtRate(x: number): string {
  if (x >= 1e9) return `${+(x / 1e9).toFixed(2)}G`;
  if (x >= 1e6) return `${+(x / 1e6).toFixed(2)}M`;
  if (x >= 1e5) return `${+(x / 1e3).toFixed(0)}k`;
  if (x >= 1e3) return `${+(x / 1e3).toFixed(1)}k`;
  return `${+x.toFixed(0)}`;
}

/** A ratio as 18.2×, 1.45×, <0.01× or 0×. */
export function fmtRatio(r: number): string {
  if (r >= 10) return `${r.toFixed(1)}×`;
  if (r >= 0.01) return `${r.toFixed(2)}×`;
  return r > 0 ? "<0.01×" : "0×";
}

/** The tick step: the smallest 1, 2, 2.5 or 5 times a power of ten giving at most `maxTicks`. */
export function niceStep(max: number, maxTicks: number): number {
  if (!(max > 0)) return 1;
  const raw = max / Math.max(1, maxTicks);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Split `text` into lines no wider than `widthPx` (a single word longer than that is cut). */
export function wrap(text: string, sizePx: number, widthPx: number, bold = false): string[] {
  const maxChars = Math.max(8, Math.floor(widthPx / textWidth("x", sizePx, bold)));
  const lines: string[] = [];
  let line = "";
  for (let word of text.split(/\s+/).filter((w) => w !== "")) {
    while (word.length > maxChars) {
      if (line !== "") lines.push(line), line = "";
      lines.push(word.slice(0, maxChars - 1) + "…");
      word = "…" + word.slice(maxChars - 1);
    }
    const next = line === "" ? word : `${line} ${word}`;
    if (next.length > maxChars) lines.push(line), line = word;
    else line = next;
  }
  if (line !== "") lines.push(line);
  return lines;
}

function reasonFor(workload: string, system: string): string | undefined {
  const key = system.startsWith("fio-") ? "fio" : system;
  return ABSENCE_REASONS[`${workload} ${key}`];
}

/** The notes of one panel: what was expected and not measured, and why. */
function absenceNotes(
  id: string,
  w: ChartWorkload | undefined,
  expected: string[],
  known: string[],
): string[] {
  if (w === undefined) {
    return ["Not in this results file: no bars (rerun deno task bench:compare)."];
  }
  const notes: string[] = [];
  const missing = expected.filter((s) => w.systems[s] === undefined);
  if (missing.length > 0) {
    notes.push(`Missing from this results file (failed or skipped): ${missing.join(", ")}.`);
  }
  // Systems left out on purpose are named only where the comparison says why (a workload of
  // another kind, such as W7's merge, is not listed under W1).
  const left = known.filter((s) => !expected.includes(s) && w.systems[s] === undefined);
  const byReason = new Map<string, string[]>();
  for (const s of left) {
    const r = reasonFor(id, s);
    if (r !== undefined) byReason.set(r, [...(byReason.get(r) ?? []), s]);
  }
  for (const [r, ss] of byReason) {
    const fio = ss.every((s) => s.startsWith("fio-"));
    notes.push(fio ? `No fio row: ${r}.` : `Not run: ${ss.join(", ")}: ${r}.`);
  }
  if (w.systems.plain === undefined) {
    const why = ABSENCE_REASONS[`${id} all`];
    notes.push(why === undefined ? "No plain Deno row: no ratios." : `No ratios: ${why}.`);
  }
  return notes;
}

/** Options of {@linkcode layoutChart}. */
export interface ChartOptions {
  /** Workloads to show, in order, with the systems each should have; default: those present. */
  expected?: ExpectedWorkload[];
  /** Panels per row (default 2). */
  columns?: number;
  /** A line under the title (date, machine). */
  caption?: string;
}

/** Lays the chart out (pure): see the file's comment. */
export function layoutChart(
  ws: Record<string, ChartWorkload>,
  options: ChartOptions = {},
): ChartLayout {
  const expected = options.expected ??
    Object.entries(ws).map(([id, w]) => ({ id, title: w.title, systems: Object.keys(w.systems) }));
  for (const [id, w] of Object.entries(ws)) {
    if (!expected.some((e) => e.id === id)) {
      expected.push({ id, title: w.title, systems: Object.keys(w.systems) });
    }
  }
  const columns = Math.max(1, options.columns ?? 2);
  const known = [...new Set([...Object.keys(COLORS), ...expected.flatMap((e) => e.systems)])];
  const order = (id: string) => {
    const names = new Set([...expected.find((e) => e.id === id)!.systems]);
    for (const s of Object.keys(ws[id]?.systems ?? {})) names.add(s);
    return known.filter((s) => names.has(s)).concat([...names].filter((s) => !known.includes(s)));
  };
  const valueLabel = (id: string, s: string) => {
    const w = ws[id];
    const v = w.systems[s].recordsPerSec;
    const plain = w.systems.plain?.recordsPerSec;
    const ratio = plain === undefined || plain <= 0 ? "" : `  ${fmtRatio(v / plain)}`;
    return `${fmtRate(v)}/s${ratio}`;
  };
  // One width for every panel, from the longest system name and value label anywhere.
  let labelW = 60, valueW = 60;
  for (const e of expected) {
    for (const s of Object.keys(ws[e.id]?.systems ?? {})) {
      labelW = Math.max(labelW, textWidth(s, FONT));
      valueW = Math.max(valueW, textWidth(valueLabel(e.id, s), FONT - 1));
    }
  }
  labelW += 10;
  valueW += 10;
  const panelW = labelW + BAR_AREA + valueW;
  const innerW = panelW - 2 * PAD;
  const width = PAD + columns * panelW + (columns - 1) * GAP + PAD;

  const texts: TextItem[] = [], bars: BarItem[] = [], lines: LineItem[] = [];
  const panels: PanelItem[] = [];
  const title = "@percore/wal vs plain Deno, node:sqlite and fio: records/s per workload";
  let top = PAD;
  for (const t of wrap(title, 15, width - 2 * PAD, true)) {
    texts.push(textItem(PAD, top + 15, t, 15, "start", { bold: true }));
    top += 20;
  }
  const sub = `${options.caption ?? ""}${options.caption ? ". " : ""}Each panel has its own ` +
    "linear axis from 0; the dashed line is plain Deno's rate; × is the ratio to plain Deno.";
  for (const t of wrap(sub, NOTE_FONT, width - 2 * PAD)) {
    texts.push(textItem(PAD, top + NOTE_FONT + 2, t, NOTE_FONT, "start", { fill: "#444" }));
    top += NOTE_FONT + 5;
  }
  top += 10;

  for (let row = 0; row * columns < expected.length; row++) {
    let rowH = 0;
    for (let col = 0; col < columns; col++) {
      const e = expected[row * columns + col];
      if (e === undefined) break;
      const px = PAD + col * (panelW + GAP);
      const h = layoutPanel(e, px, top);
      rowH = Math.max(rowH, h);
    }
    top += rowH + GAP;
  }

  function layoutPanel(e: ExpectedWorkload, px: number, py: number): number {
    const w = ws[e.id];
    let y = py + PAD;
    for (const t of wrap(`${e.id}: ${w?.title ?? e.title}`, FONT, innerW, true)) {
      texts.push(textItem(px + PAD, y + FONT, t, FONT, "start", { bold: true }));
      y += FONT + 4;
    }
    y += 4;
    const systems = w === undefined ? [] : order(e.id).filter((s) => w.systems[s] !== undefined);
    const values = systems.map((s) => w!.systems[s].recordsPerSec);
    const maxValue = Math.max(0, ...values.filter(Number.isFinite));
    const x0 = px + labelW;
    const tickLabelW = textWidth(fmtRate(maxValue * 10 || 10), NOTE_FONT) + 10;
    const step = niceStep(maxValue || 1, Math.max(1, Math.floor(BAR_AREA / tickLabelW)));
    const axisMax = Math.max(step, Math.ceil(maxValue / step) * step);
    const xOf = (v: number) => x0 + (BAR_AREA * Math.min(Math.max(v, 0), axisMax)) / axisMax;
    const barsTop = y;
    for (const s of systems) {
      const v = w!.systems[s].recordsPerSec;
      const bx = xOf(v);
      texts.push(textItem(x0 - 6, y + ROW_H / 2 + 4, s, FONT, "end"));
      bars.push({
        x: x0,
        y: y + (ROW_H - BAR_H) / 2,
        w: Math.max(1, bx - x0),
        h: BAR_H,
        workload: e.id,
        system: s,
        value: v,
        axisMax,
        fill: COLORS[s] ?? "#bcbd22",
      });
      texts.push(textItem(bx + 4, y + ROW_H / 2 + 4, valueLabel(e.id, s), FONT - 1, "start"));
      y += ROW_H;
    }
    if (systems.length > 0) {
      for (let t = 0; t <= axisMax + step / 2; t += step) {
        const tx = xOf(t);
        lines.push({
          x1: tx,
          y1: barsTop,
          x2: tx,
          y2: y + 3,
          stroke: t === 0 ? "#000" : "#e3e3e3",
        });
        texts.push(
          textItem(tx, y + 4 + NOTE_FONT, fmtRate(t), NOTE_FONT, "middle", { fill: "#444" }),
        );
      }
      const plain = w!.systems.plain?.recordsPerSec;
      if (plain !== undefined) {
        const tx = xOf(plain);
        lines.push({ x1: tx, y1: barsTop - 3, x2: tx, y2: y + 3, stroke: "#333", dash: true });
      }
      y += NOTE_FONT + 10;
    }
    const notes = absenceNotes(e.id, w, e.systems, known);
    for (const n of notes) {
      for (const t of wrap(n, NOTE_FONT, innerW)) {
        texts.push(textItem(px + PAD, y + NOTE_FONT, t, NOTE_FONT, "start", { fill: "#8a4b00" }));
        y += NOTE_FONT + 4;
      }
    }
    const h = y + PAD - py;
    panels.push({ x: px, y: py, w: panelW, h, workload: e.id, axisMax, values, notes });
    return h;
  }

  // Panels of one row share the row's height; draw their frames at that height.
  for (const p of panels) {
    const same = panels.filter((q) => q.y === p.y);
    p.h = Math.max(...same.map((q) => q.h));
  }
  return {
    width: Math.ceil(width),
    height: Math.ceil(top - GAP + PAD),
    texts,
    bars,
    lines,
    panels,
  };
}

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const f1 = (x: number) => x.toFixed(1);

/** The layout as an SVG document. */
export function renderSvg(l: ChartLayout): string {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${l.width}" height="${l.height}" viewBox="0 0 ${l.width} ${l.height}" font-family="DejaVu Sans, Verdana, sans-serif">`,
    `<rect width="${l.width}" height="${l.height}" fill="white"/>`,
  ];
  for (const p of l.panels) {
    out.push(
      `<rect x="${f1(p.x)}" y="${f1(p.y)}" width="${f1(p.w)}" height="${
        f1(p.h)
      }" fill="none" stroke="#ccc" rx="4"/>`,
    );
  }
  for (const ln of l.lines.filter((x) => !x.dash)) {
    out.push(
      `<line x1="${f1(ln.x1)}" y1="${f1(ln.y1)}" x2="${f1(ln.x2)}" y2="${
        f1(ln.y2)
      }" stroke="${ln.stroke}"/>`,
    );
  }
  for (const b of l.bars) {
    out.push(
      `<rect x="${f1(b.x)}" y="${f1(b.y)}" width="${f1(b.w)}" height="${
        f1(b.h)
      }" fill="${b.fill}"><title>${
        esc(`${b.workload} ${b.system}: ${fmtRate(b.value)}/s`)
      }</title></rect>`,
    );
  }
  for (const ln of l.lines.filter((x) => x.dash)) {
    out.push(
      `<line x1="${f1(ln.x1)}" y1="${f1(ln.y1)}" x2="${f1(ln.x2)}" y2="${
        f1(ln.y2)
      }" stroke="${ln.stroke}" stroke-dasharray="4 3"/>`,
    );
  }
  for (const t of l.texts) {
    const attrs = [
      `x="${f1(t.x)}"`,
      `y="${f1(t.y)}"`,
      `font-size="${t.sizePx}"`,
      t.anchor === "start" ? "" : `text-anchor="${t.anchor}"`,
      t.bold ? `font-weight="bold"` : "",
      t.fill ? `fill="${t.fill}"` : "",
      // A white halo: the dashed reference line passes behind value labels, not through them.
      `stroke="white" stroke-width="3" paint-order="stroke"`,
    ].filter((a) => a !== "");
    out.push(`<text ${attrs.join(" ")}>${esc(t.text)}</text>`);
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** The chart of `ws` as SVG (what bench/compare.ts and bench/chart.ts write to docs/bench.svg). */
export function chartSvg(ws: Record<string, ChartWorkload>, options: ChartOptions = {}): string {
  return renderSvg(layoutChart(ws, options));
}
