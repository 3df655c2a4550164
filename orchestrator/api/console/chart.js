// Line charts drawn as SVG: no chart library. Each series is a <polyline> with
// data-series (its name) and data-points (how many steps it draws), which tests can count.

import { h, svg } from "./dom.js";
import { num } from "./format.js";

const PAD = { left: 56, right: 16, top: 14, bottom: 34 };

function extent(values) {
  if (!values.length) return [0, 1];
  let [lo, hi] = [Math.min(...values), Math.max(...values)];
  if (lo === hi) [lo, hi] = [lo - (Math.abs(lo) * 0.1 || 1), hi + (Math.abs(hi) * 0.1 || 1)];
  return [lo, hi];
}

/** About `count` round tick values covering [lo, hi]. */
function ticks([lo, hi], count) {
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    out.push(Number(t.toPrecision(12)));
  }
  return out;
}

const scale = ([d0, d1], [r0, r1]) => (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);

/** One value per step (the last logged: a resumed attempt re-logs the steps it redoes). */
export function byStep(rows) {
  const last = new Map();
  for (const r of rows) if (r.step != null) last.set(r.step, r.value);
  return [...last.entries()].sort((a, b) => a[0] - b[0]);
}

function axes(xDomain, yDomain, x, y, width, height) {
  const bottom = height - PAD.bottom;
  const xTicks = ticks(xDomain, 6).filter((t) => Number.isInteger(t));
  return [
    ticks(yDomain, 5).map((t) => [
      svg("line", { class: "gridline", x1: PAD.left, x2: width - PAD.right, y1: y(t), y2: y(t) }),
      svg("text", { class: "tick", x: PAD.left - 6, y: y(t) + 4, "text-anchor": "end" }, num(t)),
    ]),
    xTicks.map((t) =>
      svg("text", { class: "tick", x: x(t), y: bottom + 16, "text-anchor": "middle" }, num(t))),
    svg("line", { class: "axis", x1: PAD.left, x2: width - PAD.right, y1: bottom, y2: bottom }),
    svg("text", { class: "axis-label", x: width - PAD.right, y: height - 2, "text-anchor": "end" },
      "step"),
  ];
}

function line(series, index, x, y) {
  const coords = series.points.map(([sx, sy]) => `${x(sx).toFixed(1)},${y(sy).toFixed(1)}`);
  const lastPoint = series.points.at(-1);
  return [
    svg("polyline", {
      class: `line line-${index}`,
      points: coords.join(" "),
      "data-series": series.id,
      "data-points": series.points.length,
    }),
    lastPoint
      ? svg("circle", { class: `dot line-${index}`, cx: x(lastPoint[0]), cy: y(lastPoint[1]), r: 3 })
      : null,
  ];
}

/** A figure: title, latest value of each series, and the chart of value against step. */
export function lineChart({ title, series, width = 640, height = 220 }) {
  const all = series.flatMap((s) => s.points);
  const [xDomain, yLo] = [extent(all.map((p) => p[0])), extent(all.map((p) => p[1]))];
  const room = (yLo[1] - yLo[0]) * 0.05;
  const yDomain = [yLo[0] - room, yLo[1] + room];
  const x = scale(xDomain, [PAD.left, width - PAD.right]);
  const y = scale(yDomain, [height - PAD.bottom, PAD.top]);
  const latest = series.map((s, i) => {
    const p = s.points.at(-1);
    return h("span", { class: `legend line-${i}` },
      p ? `${s.label} ${num(p[1])} at step ${p[0]}` : `${s.label}: no values yet`);
  });
  return h("figure", { class: "chart" },
    h("figcaption", {}, h("strong", {}, title), " ", latest),
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title },
      all.length ? axes(xDomain, yDomain, x, y, width, height) : svg("text", {
        class: "empty", x: width / 2, y: height / 2, "text-anchor": "middle",
      }, "waiting for the first values"),
      series.map((s, i) => line(s, i, x, y))));
}
