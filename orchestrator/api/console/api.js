// The one door to the server: every call carries the token in the Authorization header
// (never a cookie), and every error becomes an ApiError holding the server's own words.

const TOKEN_KEY = "orch.token";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `the server answered ${status}`);
    this.status = status;
    this.error = body.error;
    this.hint = body.hint;
  }
}

async function errorBody(response) {
  try {
    return await response.json();
  } catch {
    return { detail: `${response.status} ${response.statusText}` };
  }
}

/** Call the API; a 401 also tells the app (event "orch:unauthorized") to go to sign-in. */
export async function api(path, { method = "GET", body, as = "json" } = {}) {
  const headers = { Authorization: `Bearer ${session.token() || ""}` };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const error = new ApiError(response.status, await errorBody(response));
    if (response.status === 401) {
      window.dispatchEvent(new CustomEvent("orch:unauthorized", { detail: error.message }));
    }
    throw error;
  }
  return as === "text" ? response.text() : response.json();
}

export const post = (path, body) => api(path, { method: "POST", body });

/** "?a=1&b=2" from the non-empty values of an object. */
export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== "" && v != null);
  return pairs.length ? `?${new URLSearchParams(pairs)}` : "";
}

/** Run fn now and again `ms` after each run ends, until fn returns false or the returned
 * stop function is called (when the user leaves the page). */
export function poll(fn, ms = 2000) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    let again = true;
    try {
      again = (await fn()) !== false;
    } catch (error) {
      console.error(error);
    }
    if (again && !stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

const RANK = { viewer: 0, member: 1, admin: 2 };

/** Whether the signed-in user's role covers `role` (the server checks again). */
export const may = (user, role) => RANK[user.role] >= RANK[role];
