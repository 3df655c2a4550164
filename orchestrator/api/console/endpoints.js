// Endpoints as the registry records them (refreshed every 5 s), and a box to try one.

import { api, poll, post } from "./api.js";
import { alertBox, h, replace } from "./dom.js";
import { badge, gated, when } from "./format.js";

const COLUMNS = ["name", "model", "alias", "task", "status", "replicas", "url", "updated"];

function endpointRow(e) {
  const [name, version] = e.model.split(":");
  return h("tr", { "data-endpoint": e.name },
    h("td", {}, e.name),
    h("td", {}, h("a", { href: `#/models/${encodeURIComponent(`${name}:${version}`)}` }, e.model)),
    h("td", {}, e.alias ? `@${e.alias}` : "—"),
    h("td", {}, e.task),
    h("td", {}, badge(e.status), e.message ? h("div", { class: "muted" }, e.message) : null),
    h("td", {}, e.replicas),
    h("td", { class: "summary" }, e.url || "—"),
    h("td", { class: "nowrap" }, when(e.updated_at)));
}

/** The request body: JSON as typed when it is an object, else {"inputs": [text]}. */
function requestBody(text) {
  const trimmed = text.trim();
  return trimmed.startsWith("{") ? JSON.parse(trimmed) : { inputs: [text] };
}

function tryIt(select) {
  const input = h("textarea", {
    id: "predict-input", rows: 3,
    placeholder: 'A sentence, or a whole JSON body: {"inputs": {"question": …, "context": …}}',
  });
  const out = h("div", { id: "predict-output" });
  const send = async () => {
    replace(out, h("p", { class: "muted" }, "asking…"));
    try {
      const answer = await post(`/api/endpoints/${encodeURIComponent(select.value)}/predict`,
        { body: requestBody(input.value) });
      replace(out, h("p", { class: "muted" }, `answered by v${answer.version} (${answer.task})`),
        h("pre", { class: "json" }, JSON.stringify(answer.result, null, 2)));
    } catch (error) {
      replace(out, alertBox(error));
    }
  };
  return h("div", { class: "card" },
    h("div", { class: "row" }, h("label", {}, "endpoint", select),
      h("button", { type: "button", id: "predict", onclick: send }, "Predict")),
    input, out);
}

function updateChoices(select, endpoints) {
  const chosen = select.value;
  replace(select, endpoints.map((e) =>
    h("option", { value: e.name, selected: e.name === chosen }, e.name)));
}

export function endpointsPage(root, { user }) {
  const [body, error, select] = [h("tbody"), h("div"), h("select", { id: "predict-endpoint" })];
  replace(root, h("div", { class: "page-head" }, h("h1", {}, "Endpoints")), error,
    h("table", { class: "grid", id: "endpoints" },
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", {}, c)))), body),
    h("h2", {}, "Try it"),
    gated(user, "member", "Try an endpoint", tryIt(select)));
  return poll(async () => {
    try {
      const endpoints = await api("/api/endpoints");
      replace(body, endpoints.length ? endpoints.map(endpointRow) : h("tr", {},
        h("td", { colspan: COLUMNS.length, class: "empty" },
          "Nothing is served. `orch serve NAME@production` deploys a model.")));
      updateChoices(select, endpoints);
      replace(error);
    } catch (e) {
      replace(error, alertBox(e));
      return e.status !== 401;
    }
  }, 5000);
}
