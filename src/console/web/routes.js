// Routes: which clusters each topic pattern writes and reads, so failover
// state shows as the write list and the first healthy cluster. Mirror jobs
// are on the migrations page.
import { api, h, stateBadge, table } from "./api.js";

export function mount(root) {
  const routes = h("div");
  const clusters = h("div");
  root.replaceChildren(h("h1", {}, "Routes"),
    h("section", {}, h("h2", {}, "Routes"), routes),
    h("section", {}, h("h2", {}, "Write failover"), clusters));

  return async () => {
    const [routeList, clusterList] = await Promise.all([
      api("GET", "/routes"), api("GET", "/clusters")]);
    const byName = new Map((clusterList.clusters || []).map((c) => [c.name, c]));
    const writable = (c) => c && c.state === "STATE_UP" && c.breaker !== "open" && !c.drained;
    routes.replaceChildren(table("routes",
      ["Topic pattern", "Writes (in order)", "Writing now", "Reads", "Auto-create", "SDK fallback"],
      (routeList.routes || []).map((r) => [h("code", {}, r.topic), (r.write || []).join(" → "),
        (r.write || []).find((name) => writable(byName.get(name))) || h("span", { class: "state-down" }, "none healthy"),
        (r.read || []).join(", "), r.autoCreateTopics ? "yes" : "no", r.fallback ? "yes" : "no"]),
      "No routes: every topic goes to the only cluster. Add routes with ferry routes put."));
    clusters.replaceChildren(table("failover", ["Cluster", "State", "Write breaker", "Drained"],
      (clusterList.clusters || []).map((c) => [c.name, stateBadge(c.state), stateBadge(c.breaker),
                                               c.drained ? "yes" : "no"]),
      "No clusters configured."));
  };
}
