// The console: a single page with hash routes (#/jobs, #/jobs/7, #/models, #/models/clf:2,
// #/endpoints, #/signin). Each page renders into a fresh <section> and returns a function
// that stops its refreshing when the user leaves it.

import { api, session } from "./api.js";
import { alertBox, h, replace } from "./dom.js";
import { endpointsPage } from "./endpoints.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { modelPage, modelsPage } from "./models.js";
import { signinPage } from "./signin.js";
import { learn } from "./vocabulary.js";

const ROUTES = [
  [/^#\/jobs\/(\d+)$/, jobPage],
  [/^#\/jobs$/, jobsPage],
  [/^#\/models\/([^/]+)$/, modelPage],
  [/^#\/models$/, modelsPage],
  [/^#\/endpoints$/, endpointsPage],
];

const state = {
  user: null, vocabulary: null, stop: null, generation: 0, message: null, returnTo: "#/jobs",
};
const main = () => document.getElementById("main");

function renderHeader() {
  const { user } = state;
  document.getElementById("nav").hidden = !user;
  document.getElementById("sign-out").hidden = !user;
  document.getElementById("who").textContent = user
    ? `signed in as ${user.name} (${user.role})` : "";
  const section = location.hash.split("/")[1];
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.section === section);
  }
}

function mount(page, params) {
  const root = h("section", { class: "page" });
  replace(main(), root);
  state.stop = page(root, { user: state.user, params }) || null;
}

function showSignin() {
  state.user = null;
  renderHeader();
  const message = state.message;
  state.message = null;
  mount(signinPage, { message, onSignedIn });
}

function onSignedIn(user) {
  state.user = user;
  go(state.returnTo === "#/signin" ? "#/jobs" : state.returnTo);
}

async function route() {
  state.stop?.();
  state.stop = null;
  const generation = ++state.generation;
  const hash = location.hash && location.hash !== "#/" ? location.hash : "#/jobs";
  if (hash === "#/signin" || !session.token()) {
    if (hash !== "#/signin") state.returnTo = hash;
    showSignin();
    return;
  }
  if (!state.user || !state.vocabulary) {
    try {
      const [user, words] = await Promise.all(
        [state.user || api("/api/whoami"), state.vocabulary || api("/api/vocabulary")]);
      state.user = user;
      state.vocabulary = learn(words);
    } catch (error) {
      if (error.status !== 401) replace(main(), alertBox(error));
      return; // a 401 has already sent us to sign-in
    }
    if (generation !== state.generation) return;
  }
  renderHeader();
  for (const [pattern, page] of ROUTES) {
    const match = hash.match(pattern);
    if (match) return mount(page, match.slice(1).map(decodeURIComponent));
  }
  replace(main(), alertBox(`nothing at ${hash}`));
}

function signOut(message) {
  session.signOut();
  state.user = null;
  state.message = message;
  go("#/signin");
}

/** Show `hash`, also when it is the current one (no hashchange then). */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

window.addEventListener("orch:unauthorized", (event) => {
  const signingIn = location.hash === "#/signin" || !state.user;
  if (!signingIn) state.returnTo = location.hash;
  signOut(`${signingIn ? "Sign-in refused" : "Signed out"}: ${event.detail}`);
});
window.addEventListener("hashchange", route);
document.getElementById("sign-out").addEventListener("click", () => signOut(null));
route();
