// Model versions, and one version's page: lineage, metrics, and the alias moves (admin).

import { api, poll, post } from "./api.js";
import { alertBox, factItems, h, replace, statusBox } from "./dom.js";
import { aliasBadges, badge, gated, metricsText, num, when } from "./format.js";

const COLUMNS = ["model", "version", "task", "aliases", "headline", "metrics", "job", "created"];
const versionHref = (name, version) => `#/models/${encodeURIComponent(`${name}:${version}`)}`;

function versionRow(v) {
  return h("tr", { "data-model": v.name, "data-version": v.version },
    h("td", {}, v.name),
    h("td", {}, h("a", { href: versionHref(v.name, v.version) }, `v${v.version}`)),
    h("td", {}, v.task),
    h("td", { class: "aliases" }, aliasBadges(v.aliases)),
    h("td", {}, v.headline || "—"),
    h("td", { class: "summary" }, metricsText(v.metrics)),
    h("td", {}, v.job_id ? h("a", { href: `#/jobs/${v.job_id}` }, `#${v.job_id}`) : "—"),
    h("td", { class: "nowrap" }, when(v.created_at)));
}

export function modelsPage(root) {
  const body = h("tbody");
  const error = h("div");
  replace(root, h("div", { class: "page-head" }, h("h1", {}, "Models")), error,
    h("table", { class: "grid", id: "models" },
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", {}, c)))), body));
  return poll(async () => {
    try {
      const rows = await api("/api/models");
      replace(body, rows.length ? rows.map(versionRow) : h("tr", {},
        h("td", { colspan: COLUMNS.length, class: "empty" }, "No model is registered yet.")));
      replace(error);
    } catch (e) {
      replace(error, alertBox(e));
      return e.status !== 401;
    }
  }, 5000);
}

/** A path shows its last part (the whole of it on hover); NAME:VERSION links to it. */
function modelRef(ref) {
  if (/^[\w.-]+:\d+$/.test(ref)) return h("a", { href: `#/models/${encodeURIComponent(ref)}` }, ref);
  return h("span", { title: ref }, ref.split("/").filter(Boolean).at(-1) || ref);
}

/** " · train 2000, validation 872 rows" from {split: rows}. */
function rowCounts(numRows) {
  const parts = Object.entries(numRows || {}).map(([split, n]) => `${split} ${n}`);
  return parts.length ? ` · ${parts.join(", ")} rows` : "";
}

function lineage(v) {
  const l = v.lineage;
  const origin = l.imported_from
    ? ["imported from", modelRef(l.imported_from)]
    : ["job", l.job && [h("a", { href: `#/jobs/${l.job.id}` }, `#${l.job.id} ${l.job.kind}`),
      " ", badge(l.job.status)]];
  const steps = [
    ["dataset", l.dataset && [modelRef(l.dataset.uri),
      rowCounts(l.dataset.num_rows)]],
    ["tokenizer", l.tokenizer],
    ["base model", l.base_model && modelRef(l.base_model)],
    origin,
    ["model version", h("strong", {}, `${v.name}:${v.version}`)],
    ["endpoints", l.endpoints.length
      ? l.endpoints.map((e, i) => [i ? ", " : "", h("a", { href: "#/endpoints" }, e)]) : null],
  ];
  return h("ol", { class: "lineage", id: "lineage" }, steps.map(([label, value]) =>
    h("li", { class: value ? "" : "missing" },
      h("span", { class: "label" }, label), h("span", { class: "value" }, value || "—"))));
}

function details(v) {
  const badges = aliasBadges(v.aliases);
  const facts = [
    ["task", v.task], ["aliases", badges.length ? badges : "—"],
    ["headline", v.headline || "—"], ["created", when(v.created_at)],
    ["artifact", v.artifact_uri], ["fingerprint", v.lineage.fingerprint || "—"],
    ["code version", v.lineage.code_version || "—"],
  ];
  const metrics = Object.entries(v.metrics || {});
  return [
    h("dl", { class: "facts" }, factItems(facts)),
    h("h2", {}, "Lineage"), lineage(v),
    h("h2", {}, "Metrics"),
    metrics.length ? h("table", { class: "grid compact" }, h("tbody", {},
      metrics.map(([k, val]) => h("tr", {}, h("th", {}, k), h("td", {}, num(val))))))
      : h("p", { class: "muted" }, "No metrics recorded."),
  ];
}

function aliasActions(user, v, note, reload) {
  const alias = h("input", { id: "alias", name: "alias", value: "production", size: 14 });
  const version = h("input", {
    id: "target-version", name: "version", type: "number", min: 1, value: v.version, size: 5,
  });
  const name = encodeURIComponent(v.name);
  const act = (path, body) => async () => {
    try {
      replace(note, statusBox((await post(`/api/models/${name}/${path}`, body())).messages));
      await reload();
    } catch (error) {
      replace(note, alertBox(error));
    }
  };
  const promote = act("promote", () => ({ version: Number(version.value), alias: alias.value }));
  const rollback = act("rollback", () => ({ alias: alias.value }));
  return gated(user, "admin", "Promote or roll back", h("div", { class: "card" },
    h("div", { class: "row" },
      h("label", {}, "alias", alias), h("label", {}, "version", version),
      h("button", { type: "button", id: "promote", onclick: promote }, "Promote"),
      h("button", { type: "button", id: "rollback", class: "quiet", onclick: rollback },
        "Roll back alias")),
    h("p", { class: "muted" }, "Promote points NAME@ALIAS at the version; roll back returns " +
      "the alias to the version it held before its latest move. Endpoints that follow the " +
      "alias move with it.")));
}

export function modelPage(root, { user, params: [ref] }) {
  const [info, note, error] = [h("div"), h("div"), h("div")];
  const title = h("h1", {}, ref);
  const reload = async () => {
    try {
      const v = await api(`/api/models/${encodeURIComponent(ref)}`);
      title.textContent = `${v.name}:${v.version}`;
      replace(info, details(v));
      replace(error);
      return v;
    } catch (e) {
      replace(error, alertBox(e));
      return null;
    }
  };
  replace(root, h("div", { class: "page-head" }, title), error, note, info);
  reload().then((v) => v && info.before(aliasActions(user, v, note, reload)));
}
