// One job: its state, live curves, events, log tail and spec, re-fetched every 2 s until it
// ends (then once more, for what it wrote last).

import { api, may, poll, post } from "./api.js";
import { byStep, lineChart } from "./chart.js";
import { alertBox, factItems, h, replace, statusBox } from "./dom.js";
import { badge, jobDuration, num, when } from "./format.js";
import { isTerminal } from "./vocabulary.js";

const LOG_LINES = 200;
const SPLIT_ORDER = { train: 0, eval: 1, final: 2 };

function mayCancel(user, job) {
  return may(user, "admin") || (user.role === "member" && job.submitted_by === user.name);
}

function cancelButton(id, note) {
  let armed = null;
  const reset = () => { armed = null; button.textContent = "Cancel job"; };
  const button = h("button", { type: "button", class: "danger", id: "cancel", hidden: true },
    "Cancel job");
  button.addEventListener("click", async () => {
    if (!armed) { // a second click within 4 s confirms
      button.textContent = "Click again to cancel";
      armed = setTimeout(reset, 4000);
      return;
    }
    clearTimeout(armed);
    button.disabled = true;
    try {
      replace(note, statusBox((await post(`/api/jobs/${id}/cancel`)).messages));
    } catch (error) {
      replace(note, alertBox(error));
    }
    button.disabled = false;
    reset();
  });
  return button;
}

function renderFacts(dl, job) {
  const facts = [
    ["owner", job.submitted_by || "—"], ["created", when(job.created_at)],
    ["started", when(job.started_at)], ["finished", when(job.finished_at)],
    ["duration", jobDuration(job)], ["attempts", job.attempts], ["priority", job.priority],
    ["progress", job.progress || "—"],
  ];
  replace(dl, factItems(facts));
}

function renderEvents(body, events) {
  replace(body, events.map((e) => h("tr", {},
    h("td", { class: "nowrap" }, when(e.at)),
    h("td", { class: "nowrap" }, e.from ? `${e.from} → ${e.to}` : e.to),
    h("td", {}, e.reason || ""))));
}

function renderOutcome(box, job) {
  replace(box,
    job.cancel_requested && !isTerminal(job.status)
      ? h("p", { class: "muted" }, "A stop was requested; the scheduler stops the driver.") : null,
    job.error ? [h("h3", {}, "Error"), h("pre", { class: "error" }, job.error)] : null,
    job.result ? [h("h3", {}, "Result"), h("pre", { class: "json" },
      JSON.stringify(job.result, null, 2))] : null);
}

/** The last value of every metric, train, eval and final. */
function latestValues(metrics) {
  const last = new Map();
  for (const m of metrics) last.set(`${m.split}\u0000${m.name}`, m);
  const rows = [...last.values()].sort((a, b) =>
    SPLIT_ORDER[a.split] - SPLIT_ORDER[b.split] || a.name.localeCompare(b.name));
  if (!rows.length) return null;
  return h("table", { class: "grid compact" },
    h("thead", {}, h("tr", {}, ["split", "metric", "value", "step"].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((m) => h("tr", {},
      h("td", {}, m.split), h("td", {}, m.name), h("td", {}, num(m.value)),
      h("td", {}, m.step ?? "—")))));
}

function renderCurves(parts, metrics) {
  const points = (split, name) =>
    byStep(metrics.filter((m) => m.split === split && m.name === name));
  replace(parts.train, lineChart({
    title: "Training loss", width: 1120, height: 300,
    series: [{ id: "train-loss", label: "loss", points: points("train", "loss") }],
  }));
  const evalNames = [...new Set(
    metrics.filter((m) => m.split === "eval" && m.step != null).map((m) => m.name))].sort();
  replace(parts.evals, evalNames.length
    ? evalNames.map((name) => lineChart({
      title: `Eval ${name}`, width: 400, height: 220,
      series: [{ id: `eval-${name}`, label: name, points: points("eval", name) }],
    }))
    : h("p", { class: "muted" }, "No evaluation yet."));
  replace(parts.values, latestValues(metrics));
}

async function renderLog(pre, id) {
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  try {
    const text = await api(`/api/jobs/${id}/logs`, { as: "text" });
    pre.textContent = text.split("\n").slice(-LOG_LINES).join("\n") || "(the log is empty)";
    pre.classList.remove("muted");
  } catch (error) {
    if (error.status === 401) throw error;
    pre.textContent = error.message; // 409: the job has no driver yet, so no log
    pre.classList.add("muted");
  }
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function layout(root, parts) {
  replace(root,
    h("div", { class: "page-head" }, h("h1", {}, parts.title), parts.status,
      h("span", { class: "spacer" }), parts.cancel),
    parts.note, parts.error,
    parts.facts,
    h("h2", {}, "Curves"), parts.train, parts.evals, parts.values,
    parts.outcome,
    h("h2", {}, "Events"),
    h("table", { class: "grid", id: "events" }, h("thead", {}, h("tr", {},
      ["at", "state", "reason"].map((c) => h("th", {}, c)))), parts.events),
    h("h2", {}, `Log (last ${LOG_LINES} lines)`), parts.log,
    h("h2", {}, "Spec"), parts.spec);
}

export function jobPage(root, { user, params: [id] }) {
  const note = h("div");
  const parts = {
    title: h("span", {}, `Job ${id}`), status: h("span"), note, error: h("div"),
    cancel: cancelButton(id, note), facts: h("dl", { class: "facts" }), train: h("div"),
    evals: h("div", { class: "chart-grid" }), values: h("div"), outcome: h("div"),
    events: h("tbody"), log: h("pre", { class: "log", id: "log" }, "…"),
    spec: h("pre", { class: "json", id: "spec" }, "…"),
  };
  layout(root, parts);
  let ended = false;
  let drawn = null;
  return poll(async () => {
    try {
      const [job, metrics] = await Promise.all(
        [api(`/api/jobs/${id}`), api(`/api/jobs/${id}/metrics`)]);
      parts.title.textContent = `Job ${job.id} · ${job.kind} ${job.name}`;
      replace(parts.status, badge(job.status));
      parts.cancel.hidden = isTerminal(job.status) || !mayCancel(user, job);
      renderFacts(parts.facts, job);
      const signature = JSON.stringify(metrics);
      if (signature !== drawn) renderCurves(parts, metrics);
      drawn = signature;
      renderEvents(parts.events, job.events);
      renderOutcome(parts.outcome, job);
      parts.spec.textContent = JSON.stringify(job.spec, null, 2);
      await renderLog(parts.log, id);
      replace(parts.error);
      if (isTerminal(job.status)) {
        if (ended) return false; // it ended and the pass after the end is done
        ended = true;
      }
    } catch (error) {
      replace(parts.error, alertBox(error));
      return error.status !== 404 && error.status !== 401;
    }
  });
}
