// How values read on the page: times, durations, numbers, states.

import { may } from "./api.js";
import { h } from "./dom.js";

const pad = (n) => String(n).padStart(2, "0");

/** "2026-11-29 14:33:05" in the browser's time zone; "—" when absent. */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "42.0 s", "3 m 05 s", "2 h 04 m". */
export function seconds(s) {
  if (s == null) return "—";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${pad(Math.floor(s % 60))} s`;
  return `${Math.floor(m / 60)} h ${pad(m % 60)} m`;
}

/** A finished job's duration, or how long a running one has run so far. */
export function jobDuration(job) {
  if (job.duration_s != null) return seconds(job.duration_s);
  if (job.started_at && !job.finished_at) {
    return `${seconds(Math.max(0, (Date.now() - Date.parse(job.started_at)) / 1000))} so far`;
  }
  return "—";
}

/** Four significant digits, no trailing zeros. */
export const num = (v) => (typeof v === "number" ? String(Number(v.toPrecision(4))) : String(v));

export const badge = (status) =>
  h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);

export const aliasBadges = (aliases) =>
  (aliases ? aliases.split(",") : []).map((a) => h("span", { class: "badge alias" }, `@${a}`));

export const metricsText = (metrics) =>
  Object.entries(metrics || {}).map(([k, v]) => `${k} ${num(v)}`).join(", ") || "—";

/** Content only the given role may use: shown as is to those who hold it, folded away (but
 * still usable, since the server decides) for the others. */
export function gated(user, role, what, content) {
  if (may(user, role)) return content;
  return h("details", { class: "gated" },
    h("summary", {}, `${what} (needs the ${role} role; you are a ${user.role}, so the server ` +
      "will refuse)"),
    content);
}
