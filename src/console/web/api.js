// Shared by every page: calls to ferryd's HTTP admin API with the admin
// token, and small helpers that build DOM nodes. Everything shown is inserted
// as text, never as markup: topic names and message contents come from users.

const TOKEN_KEY = "ferry.adminToken";

export function adminToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

// Kept for this browser tab only; an empty value forgets it.
export function setAdminToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(httpStatus, code, message) {
    super(message);
    this.httpStatus = httpStatus;
    this.code = code;
  }
}

// Calls `method` on /api/v1`path`; resolves to the parsed JSON answer or
// rejects with an ApiError carrying the gRPC code name and message.
export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = adminToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "UNAVAILABLE", `ferryd does not answer (${e.message})`);
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : {}; } catch { /* not JSON: reported below */ }
  if (!response.ok || json === null) {
    throw new ApiError(response.status, json?.code || `HTTP ${response.status}`,
                       json?.message || text);
  }
  return json;
}

// The node's own Prometheus text, for rates.
export async function scrapeMetrics() {
  const response = await fetch("/metrics");
  if (!response.ok) throw new ApiError(response.status, `HTTP ${response.status}`, "/metrics");
  return response.text();
}

// What to do about an error, for the operator.
function hintFor(error) {
  if (error.httpStatus === 403 && /writes over HTTP are off|changes state/.test(error.message)) {
    return "Writes are disabled: set admin.http.allow_writes: true in ferryd's configuration, " +
        "or enter the admin token (admin.http.token) at the top right.";
  }
  if (error.httpStatus === 401) return "The admin token was refused: enter admin.http.token's value at the top right.";
  if (error.httpStatus === 0) return "Check that the node is running and reachable, then reload.";
  if (error.httpStatus === 503) return "No cluster can serve this now: see the clusters on the Overview page.";
  if (error.httpStatus === 404) return "It may have been deleted: go back to the list.";
  return "";
}

// h("td", {class: "num"}, "12") -> <td class="num">12</td>. Attributes named
// on* are event listeners; children are nodes, text, arrays or null.
export function h(tag, attributes = {}, ...children) {
  const svg = ["svg", "rect", "text", "line", "g", "title"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
                   : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function errorBox(error) {
  const where = error.code ? `${error.code}: ` : "";
  return h("div", { class: "error", role: "alert" }, where, error.message,
           hintFor(error) && h("span", { class: "hint" }, hintFor(error)));
}

// A table with `headers`; `empty` (text or a node) when there are no rows.
// A header starting with "#" is a numeric column.
export function table(id, headers, rows, empty) {
  if (rows.length === 0) return h("p", { class: "empty", id }, empty);
  const numeric = headers.map((name) => name.startsWith("#"));
  return h("table", { id },
    h("thead", {}, h("tr", {}, headers.map((name, i) =>
      h("th", { class: numeric[i] ? "num" : null }, numeric[i] ? name.slice(1) : name)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) =>
      h("td", { class: numeric[i] ? "num" : null }, cell))))));
}

export function stateBadge(state) {
  const text = String(state || "-").replace(/^STATE_/, "").toLowerCase();
  return h("span", { class: `state-${text.replace(/[^a-z-]/g, "")}` }, text);
}

// Shows the outcome of an action at the top of the page.
export function notify(text, bad = false) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.className = bad ? "bad" : "";
  notice.hidden = false;
}

// Runs `work` for a button (disabled meanwhile), after `question` is
// confirmed when given; reports success or the error, then `after()`.
// Resolves to whether the work succeeded.
export async function act(button, question, work, done, after) {
  if (question && !window.confirm(question)) return false;
  button.disabled = true;
  let succeeded = false;
  try {
    await work();
    notify(done);
    succeeded = true;
  } catch (error) {
    const hint = error instanceof ApiError ? hintFor(error) : "";
    notify(`${error.code ? `${error.code}: ` : ""}${error.message}${hint ? ` — ${hint}` : ""}`, true);
  } finally {
    button.disabled = false;
  }
  // A failing refresh shows on the page at the next automatic one.
  if (after) await after().catch(() => {});
  return succeeded;
}

export const link = (href, text) => h("a", { href }, text);
export const enc = encodeURIComponent;
