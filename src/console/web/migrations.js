// Migrations (docs/migration.md) with their stage, mirror lag and, per
// consumer group they moved, its committed position on each cluster; and the
// mirror jobs with their progress. Read-only: stages run from the CLI
// (ferry migrate), where an operator sees each step's output.
import { api, enc, h, link, table } from "./api.js";

const DONE = ["finished", "rolled-back"];

function when(timestamp) {
  return timestamp ? new Date(timestamp).toLocaleString() : "-";
}

function stageBadge(stage) {
  const state = DONE.includes(stage) ? "done" : stage.startsWith("rollback") ? "rollback" : "active";
  return h("span", { class: `stage stage-${state}` }, stage);
}

// Rows of `group`'s committed position in the migration's topic on its old
// and its new cluster (the consumer stage commits on both); a cluster that
// cannot describe it shows why in one row instead.
function positions(migration, group) {
  return Promise.all([migration.from, migration.to].map(async (cluster) => {
    try {
      const described = await api("GET", `/groups/${enc(group)}?cluster=${enc(cluster)}`);
      return (described.partitions || []).filter((p) => p.topic === migration.topic).map((p) =>
        [migration.topic, link(`#/groups/${enc(group)}`, group), cluster, p.partition,
         p.committedOffset === "-1" ? "-" : p.committedOffset, p.lag]);
    } catch (error) {
      return [[migration.topic, group, cluster,
               h("span", { class: "state-down" }, `${error.code}: ${error.message}`), "", ""]];
    }
  })).then((rows) => rows.flat());
}

export function mount(root) {
  const migrations = h("div");
  const groups = h("div");
  const mirrors = h("div");
  root.replaceChildren(h("h1", {}, "Migrations and mirrors"),
    h("section", {}, h("h2", {}, "Migrations"), migrations),
    h("section", {}, h("h2", {}, "Positions of the migrated groups"), groups),
    h("section", {}, h("h2", {}, "Mirror jobs"), mirrors));

  return async () => {
    const [migrationList, mirrorList] = await Promise.all([
      api("GET", "/migrations"), api("GET", "/mirrors")]);
    const all = migrationList.migrations || [];
    const jobs = mirrorList.jobs || [];
    const [statuses, groupRows] = await Promise.all([
      Promise.all(jobs.map((j) => api("GET", `/mirrors/${enc(j.name)}`).catch(() => null))),
      Promise.all(all.filter((m) => !DONE.includes(m.stage)).flatMap((m) =>
        (m.groups || []).map((group) => positions(m, group))))]);

    migrations.replaceChildren(table("migrations",
      ["Topic", "From", "To", "Stage", "#Mirror lag", "Groups", "Started", "Updated"],
      all.map((m) => [h("code", {}, m.topic), m.from, m.to, stageBadge(m.stage),
                      Number(m.mirrorLag) < 0 ? "-" : m.mirrorLag,
                      (m.groups || []).join(", ") || h("span", { class: "muted" }, "after the consumer stage"),
                      when(m.started), when(m.updated)]),
      "No migrations: start one with ferry migrate start --topic T --from A --to B (docs/migration.md)."));
    groups.replaceChildren(table("migration-groups",
      ["Topic", "Group", "Cluster", "#Partition", "#Committed", "#Lag"], groupRows.flat(),
      "No migration under way has moved consumer groups yet (ferry migrate consumers does)."));
    mirrors.replaceChildren(table("mirrors", ["Job", "Source", "Target", "Topics", "State", "#Lag"],
      jobs.map((j, i) => [j.name, j.source, j.target, (j.topics || []).join(", "), j.state,
                          statuses[i] ? statuses[i].lag : "-"]),
      "No mirror jobs: start one with ferry mirror start (docs/migration.md)."));
  };
}
