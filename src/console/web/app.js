// The console's shell: routes the URL fragment (#/topics/orders) to a page
// module, refreshes the page every few seconds, and keeps the admin token.
//
// A page module exports mount(root, ...params), which builds the page's
// fixed parts (forms keep what the operator typed across refreshes) and
// returns an async refresh() that fetches and redraws the data, throwing on
// errors; the shell shows those above the page and keeps refreshing.
import { adminToken, errorBox, h, notify, setAdminToken } from "./api.js";
import * as group from "./group.js";
import * as groups from "./groups.js";
import * as migrations from "./migrations.js";
import * as overview from "./overview.js";
import * as routes from "./routes.js";
import * as topic from "./topic.js";
import * as topics from "./topics.js";

const REFRESH_MS = 5000;

const PAGES = [
  { pattern: /^\/?$/, nav: "overview", page: overview },
  { pattern: /^\/topics$/, nav: "topics", page: topics },
  { pattern: /^\/topics\/([^/]+)$/, nav: "topics", page: topic },
  { pattern: /^\/groups$/, nav: "groups", page: groups },
  { pattern: /^\/groups\/([^/]+)$/, nav: "groups", page: group },
  { pattern: /^\/routes$/, nav: "routes", page: routes },
  { pattern: /^\/migrations$/, nav: "migrations", page: migrations },
];

let current = null;  // { refresh, errors }
let refreshing = false;

async function refresh() {
  if (!current || refreshing) return;
  const mine = current;
  refreshing = true;
  try {
    await mine.refresh();
    if (mine === current) {
      mine.errors.replaceChildren();
      document.getElementById("refreshed").textContent =
          `updated ${new Date().toLocaleTimeString()}`;
    }
  } catch (error) {
    if (mine === current) mine.errors.replaceChildren(errorBox(error));
  } finally {
    refreshing = false;
  }
}

function show() {
  const path = location.hash.replace(/^#/, "");
  const root = document.getElementById("page");
  document.getElementById("notice").hidden = true;
  const match = PAGES.map((p) => [p, path.match(p.pattern)]).find(([, m]) => m);
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", Boolean(match) && a.dataset.page === match[0].nav);
  }
  if (!match) {
    current = null;
    root.replaceChildren(h("h1", {}, "Not found"),
      h("p", { class: "empty" }, `No console page ${decodeURIComponent(path)}: pick one above.`));
    return;
  }
  const [{ page }, m] = match;
  const errors = h("div", { id: "page-errors" });
  const body = h("div");
  root.replaceChildren(errors, body);
  const params = m.slice(1).map(decodeURIComponent);
  current = { refresh: page.mount(body, ...params), errors };
  refresh();
}

function setUpToken() {
  const input = document.getElementById("token");
  input.value = adminToken();
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setAdminToken(input.value.trim());
    notify(adminToken() ? "Admin token kept for this tab: changes are sent with it."
                        : "Admin token forgotten: the console is read-only unless writes are on.");
  });
}

setUpToken();
window.addEventListener("hashchange", show);
setInterval(refresh, REFRESH_MS);
show();
