// Topics: every cluster's topics (names only: partitions and watermarks
// cost a request per topic, so they are on the topic's own page); create
// one, delete one (after confirmation).
import { act, api, enc, h, link, table } from "./api.js";

export function mount(root) {
  const list = h("div");
  let refresh = null;
  const name = h("input", { id: "new-topic-name", placeholder: "name", required: true, size: 24 });
  const partitions = h("input", { id: "new-topic-partitions", type: "number", min: 1, placeholder: "partitions", size: 10 });
  const cluster = h("input", { id: "new-topic-cluster", placeholder: "cluster (default: the route's)", size: 26 });
  const create = h("button", { id: "create-topic", class: "primary", type: "submit" }, "Create topic");
  const form = h("form", {
    class: "inline", id: "create-topic-form",
    onsubmit: (event) => {
      event.preventDefault();
      const body = { name: name.value.trim(), cluster: cluster.value.trim() };
      if (partitions.value) body.partitions = Number(partitions.value);
      act(create, null, () => api("POST", "/topics", body), `Created topic ${body.name}.`, refresh)
        .then((created) => { if (created) name.value = ""; });
    },
  }, name, partitions, cluster, create);
  root.replaceChildren(h("h1", {}, "Topics"), h("section", {}, h("h2", {}, "Create"), form),
                       h("section", {}, h("h2", {}, "All topics"), list));

  refresh = async () => {
    const { topics = [] } = await api("GET", "/topics");
    list.replaceChildren(table("topics", ["Topic", "Cluster", ""],
      topics.map((t) => {
        const remove = h("button", { class: "danger", "data-topic": t.name }, "Delete");
        remove.addEventListener("click", () => act(remove,
          `Delete topic ${t.name} on ${t.cluster} and every message in it? This cannot be undone.`,
          () => api("DELETE", `/topics/${enc(t.name)}?cluster=${enc(t.cluster)}`),
          `Deleted topic ${t.name}.`, refresh));
        return [link(`#/topics/${enc(t.name)}`, t.name), t.cluster, remove];
      }),
      "No topics yet: create one above, or publish to a route with auto_create_topics."));
  };
  return refresh;
}
