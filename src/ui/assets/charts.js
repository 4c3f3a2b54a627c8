// Plain SVG charts for the dashboard: a time-series line chart (with an optional band and event
// markers on the same time axis). No dependencies. (Positions are on the map: map.js.)
const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** About n round tick values covering [lo, hi]. */
export function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map(
  (s) => s * 1000,
);

function timeTicks(t0, t1, n = 6) {
  const step = TIME_STEPS.find((s) => (t1 - t0) / s <= n) ?? 86_400_000;
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return { ticks: out, step };
}

function timeLabel(t, step) {
  const d = new Date(t);
  const hm = d.toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    ...(step < 60_000 ? { second: "2-digit" } : {}),
  });
  return step >= 86_400_000 ? d.toLocaleDateString([], { month: "short", day: "numeric" }) : hm;
}

export function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(a >= 10 ? 1 : 2);
}

/**
 * opts: { series: [{name, color, points: [[t, v|null]]}], band?: {name, color, points: [[t, lo, hi]]},
 *         markers?: [{t, color, label}], domain?: [t0, t1], unit?, height?, yMin? }
 */
export function lineChart(opts) {
  const W = opts.width ?? 640,
    H = opts.height ?? 200,
    L = 48,
    R = 12,
    T = 22,
    B = 24;
  const all = opts.series.flatMap((s) => s.points).filter((p) => p[1] !== null && p[1] !== undefined);
  const bandPts = opts.band?.points ?? [];
  const times = [...all.map((p) => p[0]), ...bandPts.map((p) => p[0]), ...(opts.markers ?? []).map((m) => m.t)];
  const [t0, t1] = opts.domain ?? [Math.min(...times), Math.max(...times)];
  const values = [...all.map((p) => p[1]), ...bandPts.flatMap((p) => [p[1], p[2]])];
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (opts.yMin !== undefined) lo = Math.min(lo, opts.yMin);
  if (hi - lo < 1e-9) {
    hi += 1;
    lo = opts.yMin === 0 ? 0 : lo - 1;
  }
  const pad = (hi - lo) * 0.08;
  hi += pad;
  if (opts.yMin !== 0) lo -= pad;
  const span = t1 > t0 ? t1 - t0 : 1;
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);

  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": opts.label ?? opts.series.map((s) => s.name).join(", "),
  });
  root.timeScale = { t0, span, L, R, W, H }; // for a cursor tied to the chart (track.js)
  for (const v of niceTicks(lo, hi, 4)) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    const t = svg("text", { x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" });
    t.textContent = formatNumber(v);
    root.append(t);
  }
  if (times.length) {
    const { ticks, step } = timeTicks(t0, t1);
    for (const tt of ticks) {
      const t = svg("text", { x: x(tt), y: H - 6, class: "tick", "text-anchor": "middle" });
      t.textContent = timeLabel(tt, step);
      root.append(t);
    }
  }
  root.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));

  if (bandPts.length) {
    const upper = bandPts.map((p) => `${x(p[0]).toFixed(1)},${y(p[2]).toFixed(1)}`);
    const lower = bandPts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).reverse();
    root.append(
      svg("polygon", {
        points: [...upper, ...lower].join(" "),
        fill: opts.band.color,
        "fill-opacity": 0.18,
        stroke: "none",
        class: "band",
      }),
    );
  }
  for (const m of opts.markers ?? []) {
    const g = svg("g", { class: "marker" });
    g.append(
      svg("line", {
        x1: x(m.t),
        x2: x(m.t),
        y1: T,
        y2: H - B,
        stroke: m.color,
        "stroke-width": 1.5,
        "stroke-dasharray": "4 3",
      }),
    );
    g.append(svg("circle", { cx: x(m.t), cy: T - 6, r: 4, fill: m.color }));
    const title = svg("title");
    title.textContent = m.label;
    g.append(title);
    root.append(g);
  }
  for (const s of opts.series) {
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    root.append(
      svg("path", {
        d,
        fill: "none",
        stroke: s.color,
        "stroke-width": 1.8,
        "stroke-dasharray": s.dashed ? "5 4" : null,
        class: "line",
        "data-series": s.name,
      }),
    );
    if (s.dots)
      for (const [t, v] of s.points)
        if (v !== null) root.append(svg("circle", { cx: x(t), cy: y(v), r: 2.2, fill: s.color }));
  }
  // legend
  let lx = L;
  for (const item of [...opts.series, ...(opts.band ? [opts.band] : [])]) {
    root.append(svg("rect", { x: lx, y: 6, width: 10, height: 10, fill: item.color, rx: 2 }));
    const t = svg("text", { x: lx + 14, y: 15, class: "legend" });
    t.textContent = item.name;
    root.append(t);
    lx += 24 + item.name.length * 6.5;
  }
  if (!all.length && !bandPts.length) {
    const t = svg("text", { x: W / 2, y: H / 2, class: "empty", "text-anchor": "middle" });
    t.textContent = opts.empty ?? "no data yet";
    root.append(t);
  }
  return root;
}
