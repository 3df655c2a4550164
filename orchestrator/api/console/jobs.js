// The jobs table: newest first, filtered by status, kind and owner, refreshed every 2 s.

import { api, poll, query } from "./api.js";
import { alertBox, h, replace } from "./dom.js";
import { badge, jobDuration, when } from "./format.js";
import { vocabulary } from "./vocabulary.js";

const COLUMNS = ["id", "kind", "name", "status", "owner", "created", "duration", "summary"];
const filters = { status: "", kind: "", submitted_by: "" }; // kept while the tab lives

function jobRow(job) {
  return h("tr", { "data-job-id": job.id },
    h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.id)),
    h("td", {}, job.kind),
    h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.name)),
    h("td", {}, badge(job.status)),
    h("td", {}, job.submitted_by || "—"),
    h("td", { class: "nowrap" }, when(job.created_at)),
    h("td", { class: "nowrap" }, jobDuration(job)),
    h("td", { class: "summary" }, job.summary || ""));
}

function choice(key, label, options, onChange) {
  const select = h("select", { name: key, onchange: () => { filters[key] = select.value; onChange(); } },
    h("option", { value: "" }, `any ${label}`),
    options.map((o) => h("option", { value: o, selected: filters[key] === o }, o)));
  return h("label", {}, label, select);
}

function filterBar(onChange) {
  let timer = null;
  const owner = h("input", {
    name: "submitted_by", value: filters.submitted_by, placeholder: "anyone", size: 12,
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(() => { filters.submitted_by = owner.value.trim(); onChange(); }, 300);
    },
  });
  return h("div", { class: "filters" },
    choice("status", "status", vocabulary.job_statuses, onChange),
    choice("kind", "kind", vocabulary.job_kinds, onChange),
    h("label", {}, "owner", owner));
}

export function jobsPage(root) {
  const body = h("tbody");
  const note = h("div");
  const updated = h("span", { class: "muted" });
  let latest = 0;
  const refresh = async () => {
    const asked = ++latest;
    try {
      const jobs = await api(`/api/jobs${query({ ...filters, limit: 100 })}`);
      if (asked !== latest) return; // a newer filter's answer wins
      replace(body, jobs.length ? jobs.map(jobRow)
        : h("tr", {}, h("td", { colspan: COLUMNS.length, class: "empty" }, "No jobs match.")));
      replace(note);
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      replace(note, alertBox(error));
    }
  };
  replace(root,
    h("div", { class: "page-head" }, h("h1", {}, "Jobs"), updated),
    filterBar(refresh),
    note,
    h("table", { class: "grid", id: "jobs" },
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", {}, c)))), body));
  return poll(refresh, 2000);
}
