// Sign-in: a token (kept in sessionStorage, for this tab only) checked with /api/whoami.

import { api, session } from "./api.js";
import { alertBox, h, replace } from "./dom.js";

export function signinPage(root, { params: { message, onSignedIn } }) {
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    placeholder: "orch_…", spellcheck: "false",
  });
  const note = h("div", {}, message ? alertBox(message) : null);
  const submit = async (event) => {
    event.preventDefault();
    session.signIn(input.value.trim());
    try {
      onSignedIn(await api("/api/whoami"));
    } catch (error) {
      if (error.status !== 401) replace(note, alertBox(error));
    }
  };
  replace(root, h("form", { class: "card signin", onsubmit: submit },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "Token"),
    input,
    h("button", { type: "submit" }, "Sign in"),
    h("p", { class: "muted" }, "An admin creates your user and token with ",
      h("code", {}, "orch users add NAME --role ROLE"),
      ". The token stays in this tab only and travels in the Authorization header."),
    note));
  input.focus();
}
