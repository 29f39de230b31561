// Consumer groups of every cluster, with state and whether they are paused.
import { api, enc, h, link, stateBadge, table } from "./api.js";

export function mount(root) {
  const list = h("div");
  root.replaceChildren(h("h1", {}, "Consumer groups"), h("section", {}, list));
  return async () => {
    const { groups = [] } = await api("GET", "/groups");
    list.replaceChildren(table("groups", ["Group", "Cluster", "State", "Paused"],
      groups.map((g) => [link(`#/groups/${enc(g.name)}`, g.name), g.cluster,
                         stateBadge(g.state), g.paused ? stateBadge("paused") : "no"]),
      "No consumer groups yet: a group appears once a client subscribes with it (ferry consume --group NAME)."));
  };
}
