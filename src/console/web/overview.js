// Overview: this node, the nodes of the control plane, the clusters with
// their state and write breaker, and publish/consume rates from the node's
// own /metrics (the difference between two scrapes).
import { api, h, scrapeMetrics, stateBadge, table } from "./api.js";

let previous = null;  // { at, publish, consume } from the last scrape

// Sum of every sample of a counter family in Prometheus text.
export function sumCounter(text, family) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${family}{`) || line.startsWith(`${family} `)) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
    }
  }
  return sum;
}

function rates(text) {
  const sample = {
    at: performance.now(),
    publish: sumCounter(text, "ferry_publish_messages_total"),
    consume: sumCounter(text, "ferry_subscribe_delivered_total"),
  };
  const last = previous;
  previous = sample;
  if (!last || sample.at <= last.at) return null;
  const seconds = (sample.at - last.at) / 1000;
  return {
    publish: Math.max(0, sample.publish - last.publish) / seconds,
    consume: Math.max(0, sample.consume - last.consume) / seconds,
  };
}

const card = (id, label, value) =>
  h("div", { class: "card", id }, h("div", { class: "muted" }, label), h("div", { class: "value" }, value));

const since = (timestamp) => (timestamp ? new Date(timestamp).toLocaleString() : "-");

export function mount(root) {
  const cards = h("div", { class: "cards" });
  const nodes = h("section", {}, h("h2", {}, "Nodes"), h("div"));
  const clusters = h("section", {}, h("h2", {}, "Clusters"), h("div"));
  root.replaceChildren(h("h1", {}, "Overview"), cards, nodes, clusters);

  return async () => {
    const [node, nodeList, clusterList, metrics] = await Promise.all([
      api("GET", "/node"), api("GET", "/nodes"), api("GET", "/clusters"), scrapeMetrics(),
    ]);
    const rate = rates(metrics);
    const perSecond = (value) => (rate ? `${value.toFixed(1)}/s` : "measuring…");
    cards.replaceChildren(
      card("card-node", `node ${node.id}`, stateBadge(node.health)),
      card("card-version", "version", node.version),
      card("card-publish", "messages published", perSecond(rate?.publish)),
      card("card-consume", "messages delivered", perSecond(rate?.consume)));
    nodes.lastChild.replaceWith(table("nodes", ["Node", "State", "gRPC", "HTTP", "Version", "Last seen"],
      (nodeList.nodes || []).map((n) => [n.id, stateBadge(n.state), n.grpcAddress, n.httpAddress,
                                         n.version, since(n.lastSeen)]),
      "No nodes known yet: nodes appear once their first heartbeat is in the control topic."));
    clusters.lastChild.replaceWith(table("clusters",
      ["Cluster", "Type", "Bootstrap", "State", "Write breaker", "Drained", "#Brokers", "Last contact", "Error"],
      (clusterList.clusters || []).map((c) => [c.name, c.type, c.bootstrap || "-", stateBadge(c.state),
        stateBadge(c.breaker), c.drained ? "yes" : "no", (c.brokers || []).length,
        since(c.lastContact), c.error || ""]),
      "No clusters configured: add one under clusters: in ferryd's configuration."));
  };
}
