// One topic: its partitions with leaders, replicas and watermarks, and the
// latest messages (GET /topics/{name}/messages: read-only, bounded).
import { api, enc, h, table } from "./api.js";

const TAIL_LIMIT = 20;
const PREVIEW_CHARS = 120;

// Base64 (protobuf's JSON for bytes) to text when it is UTF-8, else a note
// of its size, so binary values never garble the page.
export function preview(base64) {
  if (!base64) return h("span", { class: "muted" }, "(empty)");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
  } catch {
    return h("span", { class: "muted" }, `(${bytes.length} bytes, not UTF-8)`);
  }
}

const headerList = (headers) => (headers || []).length === 0 ? "" :
  h("span", { class: "mono" }, headers.map((x) => `${x.key}=${atobText(x.value)}`).join(", "));

function atobText(base64) {
  const shown = preview(base64);
  return typeof shown === "string" ? shown : shown.textContent;
}

export function mount(root, name) {
  const summary = h("p", { class: "muted" });
  const partitions = h("div");
  const messages = h("div");
  root.replaceChildren(h("h1", {}, "Topic ", h("span", { id: "topic-name" }, name)), summary,
    h("section", {}, h("h2", {}, "Partitions"), partitions),
    h("section", {}, h("h2", {}, `Latest messages (up to ${TAIL_LIMIT})`), messages));

  return async () => {
    const [topic, tail] = await Promise.all([
      api("GET", `/topics/${enc(name)}`),
      api("GET", `/topics/${enc(name)}/messages?limit=${TAIL_LIMIT}`),
    ]);
    summary.textContent = `cluster ${topic.cluster}, ${(topic.partitions || []).length} partitions`;
    partitions.replaceChildren(table("partitions",
      ["#Partition", "#Leader", "Replicas", "In sync", "#Low", "#High", "#Messages"],
      (topic.partitions || []).map((p) => [p.partition, p.leader, (p.replicas || []).join(", "),
        (p.inSyncReplicas || []).join(", "), p.lowWatermark, p.highWatermark,
        Number(p.highWatermark) - Number(p.lowWatermark)]),
      "The topic has no partitions."));
    messages.replaceChildren(table("messages",
      ["#Partition", "#Offset", "Time", "Key", "Headers", "Value"],
      (tail.messages || []).map((m) => [m.partition, m.offset,
        m.timestamp ? new Date(m.timestamp).toLocaleString() : "-",
        h("span", { class: "preview mono" }, preview(m.key)), headerList(m.headers),
        h("div", { class: "preview mono" }, preview(m.value))]),
      "No messages in this topic: publish some (ferry produce) and they show here."));
  };
}
