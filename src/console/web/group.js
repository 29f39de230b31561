// One consumer group: lag per partition (table and chart), the members on
// each node, pause/resume, and seek to earliest, latest or a time (after
// confirmation).
import { act, api, enc, h, stateBadge, table } from "./api.js";

const BAR_HEIGHT = 16;
const CHART_WIDTH = 600;
const LABEL_WIDTH = 220;
const LABEL_CHARS = 34;

// "topic[partition]", its start cut to fit the label column.
function barLabel(p) {
  const label = `${p.topic}[${p.partition}]`;
  return label.length > LABEL_CHARS ? `…${label.slice(-(LABEL_CHARS - 1))}` : label;
}

// Horizontal bars of each partition's lag, scaled to the largest.
export function lagChart(partitions) {
  const max = Math.max(1, ...partitions.map((p) => Number(p.lag)));
  const bars = CHART_WIDTH - LABEL_WIDTH - 60;
  return h("svg", {
    class: "chart", id: "lag-chart", width: CHART_WIDTH, height: partitions.length * (BAR_HEIGHT + 4) + 4,
    role: "img", "aria-label": "lag per partition",
  }, partitions.map((p, i) => {
    const y = 4 + i * (BAR_HEIGHT + 4);
    const width = Math.round((Number(p.lag) / max) * bars);
    return h("g", {},
      h("text", { x: 0, y: y + BAR_HEIGHT - 4 }, h("title", {}, `${p.topic}[${p.partition}]`), barLabel(p)),
      h("rect", { x: LABEL_WIDTH, y, width: Math.max(width, 1), height: BAR_HEIGHT }),
      h("text", { x: LABEL_WIDTH + width + 6, y: y + BAR_HEIGHT - 4 }, String(p.lag)));
  }));
}

function seekTarget(kind, time) {
  if (kind === "earliest") return { earliest: true };
  if (kind === "latest") return { latest: true };
  const at = new Date(time);
  if (!time || Number.isNaN(at.getTime())) throw new Error("pick a time to seek to");
  return { timestamp: at.toISOString() };
}

export function mount(root, name) {
  let refresh = null;
  const summary = h("p", { id: "group-summary" });
  const pause = h("button", { id: "pause-group" }, "Pause");
  const resume = h("button", { id: "resume-group" }, "Resume");
  pause.addEventListener("click", () => act(pause, null,
    () => api("POST", `/groups/${enc(name)}/pause`, {}), `Paused ${name} on every node.`, refresh));
  resume.addEventListener("click", () => act(resume, null,
    () => api("POST", `/groups/${enc(name)}/resume`, {}), `Resumed ${name}.`, refresh));

  const kind = h("select", { id: "seek-kind" },
    h("option", { value: "earliest" }, "earliest"), h("option", { value: "latest" }, "latest"),
    h("option", { value: "time" }, "time"));
  const time = h("input", { id: "seek-time", type: "datetime-local", step: 1 });
  const seek = h("button", { id: "seek-group", class: "danger", type: "submit" }, "Seek");
  const seekForm = h("form", {
    class: "inline", id: "seek-form",
    onsubmit: (event) => {
      event.preventDefault();
      let to;
      try { to = seekTarget(kind.value, time.value); } catch (e) { act(seek, null, () => Promise.reject(e)); return; }
      const where = kind.value === "time" ? `the first message at or after ${time.value}` : `the ${kind.value} message`;
      act(seek, `Move group ${name} to ${where} of every partition? Consumers will re-read or skip messages.`,
          () => api("POST", `/groups/${enc(name)}/seek`, { to }), `Moved ${name}.`, refresh);
    },
  }, "Seek every partition to", kind, time, seek);

  const lag = h("div");
  const chart = h("div");
  const members = h("div");
  root.replaceChildren(h("h1", {}, "Group ", h("span", { id: "group-name" }, name)), summary,
    h("section", {}, h("h2", {}, "Control"), h("p", { class: "inline" }, pause, " ", resume), seekForm),
    h("section", {}, h("h2", {}, "Lag per partition"), chart, lag),
    h("section", {}, h("h2", {}, "Members per node"), members));

  refresh = async () => {
    const group = await api("GET", `/groups/${enc(name)}`);
    const partitions = group.partitions || [];
    summary.replaceChildren("cluster ", group.cluster, ", state ", stateBadge(group.state), ", ",
      h("span", { id: "group-paused" }, group.paused ? "paused" : "delivering"),
      group.filter ? `, filter ${group.filter}` : "");
    pause.disabled = group.paused;
    resume.disabled = !group.paused;
    chart.replaceChildren(partitions.length ? lagChart(partitions) : "");
    lag.replaceChildren(table("group-partitions",
      ["Cluster", "Topic", "#Partition", "Node", "#Committed", "#High", "#Lag", "#In flight"],
      partitions.map((p) => [p.cluster, p.topic, p.partition, p.nodeId || "-", p.committedOffset,
                             p.highWatermark, p.lag, p.inFlight]),
      "The group has no committed positions yet: they appear once a consumer of it acks."));
    members.replaceChildren(table("group-members", ["Node", "Member", "Streams"],
      (group.members || []).map((m) => [m.nodeId, h("span", { class: "mono" }, m.memberId),
        (m.streams || []).map((s) => `${s.clientId || s.streamId} (${s.peer}, ${s.outstandingMessages} outstanding)`).join("; ") || "-"]),
      "No node consumes this group now: start a consumer (ferry consume --group NAME)."));
  };
  return refresh;
}
