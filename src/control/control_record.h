#pragma once

// The records of the control topic (DESIGN.md §1): a compacted topic on the
// control cluster through which every ferryd node learns group commands
// issued on any node. The latest record per key wins.
//
//   key "pause/<group>"  value "1" (paused) or "0" (running)
//   key "seek/<group>"      value "v2 <valid_until_ms> <id>[ <cluster>]\n" then
//                           one line per partition: "<partition> <offset> <topic>\n"
//   key "seekdone/<group>"  value "v1 <id>\n" then one line per partition
//                           moved: "<partition> <topic>\n"
//   key "route/<glob>"      value "v1\n" then "write <cluster>\n" lines,
//                           "read <cluster>\n" lines and "auto_create\n";
//                           "v1 deleted\n" once the route was deleted
//   key "seeded/routes"     value "1": the YAML routes were written once; from
//                           then on the control topic's routes win
//   key "drain/<cluster>"   value "1" (drained by an operator) or "0"
//   key "filter/<group>"   value "v1\n" then the filter's text (empty: none;
//                           docs/filters.md)
//   key "mirror/<name>"     value "v1\n", "source <cluster>\n", "target
//                           <cluster>\n" and "topic <topic>\n" lines;
//                           "v1 stopped\n" once the job was stopped
//   key "node/<node-id>"    value "v1 <up|left> <started_ms> <seen_ms>
//                           <applied>\n" then the version, gRPC and HTTP
//                           address lines: a node's heartbeat (every
//                           control.heartbeat_interval) or its clean departure
//   key "writehold/<topic>" value "1" (publishes to the topic queue) or "0"
//   key "migration/<topic>" value "v1\n", "from <cluster>\n", "to <cluster>\n",
//                           "stage <stage>\n" and "group <group>\n" lines:
//                           a migration's plan and progress
//                           (docs/migration.md)
//   key "client/settings"   value "v1\n" then one "<name> <value>\n" line per
//                           pushed SDK setting (linger_ms, max_batch_messages,
//                           max_batch_bytes, request_timeout_ms,
//                           delivery_timeout_ms); unknown names are skipped
//   key "acl/<principal> <resource> <operation>"  value "1" or "0": a runtime
//                           ACL grant or its revocation (control/acl_grants.h)
//
// A seek is a one-shot command for the nodes consuming the group when it is
// issued; nodes that read it after `valid_until_ms` (e.g. while catching up
// after a restart) ignore it. Each node that moved partitions answers with a
// "seekdone" record naming them, so the issuing node knows which partitions
// a rebalance kept from the command and issues it again for those. (Several
// nodes' answers share a key: the issuer reads them as they are appended,
// before compaction.)
//
// A seek names the cluster whose partitions it moves (a group may read
// several, and a time maps to different offsets on each); a seek without one
// (written before groups read several clusters) applies to every cluster.
// Nodes that predate the cluster skip seeks that name one (their id check
// refuses the space) instead of applying them to the wrong cluster.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "backend/cluster.h"
#include "config/config.h"
#include "control/acl_grants.h"

namespace ferry::control {

struct PauseCommand {
  std::string group = {};
  bool paused = false;
};

struct GroupFilterCommand {
  std::string group = {};
  std::string filter = {};  // empty: none
};

struct SeekCommand {
  std::string group = {};
  int64_t valid_until_ms = 0;
  std::string id = {};       // unique per command; no spaces
  std::string cluster = {};  // empty: every cluster the group reads
  std::map<backend::TopicPartition, int64_t> offsets = {};
};

struct SeekApplied {
  std::string group = {};
  std::string seek_id = {};
  std::set<backend::TopicPartition> partitions = {};
};

// A route put (`route` set) or deleted (`route` empty) under its topic glob.
struct RouteChange {
  std::string topic = {};
  std::optional<config::RouteConfig> route = {};
};

struct RoutesSeeded {};

struct DrainCommand {
  std::string cluster = {};
  bool drained = false;
};

// A mirror job: copies `topics` from `source` to `target`, partition for
// partition, on every node (the job's consumer group spreads partitions).
struct MirrorSpec {
  std::string name = {};
  std::string source = {};
  std::string target = {};
  std::vector<std::string> topics = {};
  // Records whose ferry.origin names this cluster are not copied: they are
  // its own records mirrored here (a reverse mirror, rolling a migration
  // back). Empty: every record is copied.
  std::string skip_origin = {};
  bool operator==(const MirrorSpec&) const = default;
};

// A mirror job started (`spec` set) or stopped.
struct MirrorChange {
  std::string name = {};
  std::optional<MirrorSpec> spec = {};
};

// A node's heartbeat, or (`left`) its clean departure. `applied_offset` is
// the control-topic offset through which the node applied every record and
// its effects settled (-1: none yet); the times are the node's clock.
struct NodeBeat {
  std::string node_id = {};
  bool left = false;
  int64_t started_ms = 0;
  int64_t seen_ms = 0;
  int64_t applied_offset = -1;
  std::string version = {};
  std::string grpc_address = {};
  std::string http_address = {};
  bool operator==(const NodeBeat&) const = default;
};

// Publishes to `topic` queue on every node while held (docs/migration.md).
struct WriteHoldCommand {
  std::string topic = {};
  bool held = false;
};

// A migration of `topic` from cluster `from` to `to`, written after each
// step (admin/migration_operations.h lists the stages).
struct MigrationState {
  std::string topic = {};
  std::string from = {};
  std::string to = {};
  std::string stage = {};
  // The consumer groups the consumer stage moved.
  std::vector<std::string> groups = {};
  // Unix milliseconds when the migration started and when its state was last
  // written; 0 when unknown (recorded by a ferryd that kept no times).
  int64_t started_ms = 0;
  int64_t updated_ms = 0;
  // Per partition of `topic` on `to`: the lowest offset at which one of the
  // groups resumed there at the consumer stage; a rollback reads from it
  // (a partition missing: from its start).
  std::map<int32_t, int64_t> cutover = {};
  bool operator==(const MigrationState&) const = default;
};

// The SDK settings pushed to clients; the latest record replaces them all.
struct ClientSettingsChange {
  config::ClientSettings settings = {};
};

using ControlCommand =
    std::variant<PauseCommand, SeekCommand, SeekApplied, RouteChange, RoutesSeeded,
                 DrainCommand, MirrorChange, GroupFilterCommand, NodeBeat,
                 WriteHoldCommand, MigrationState, ClientSettingsChange, AclGrant>;

struct EncodedRecord {
  std::string key;
  std::string value;
};

EncodedRecord Encode(const ControlCommand& command);

// nullopt for records this version does not understand (unknown key prefix,
// malformed value); they are skipped, so newer nodes can add record kinds.
std::optional<ControlCommand> Decode(std::string_view key, std::string_view value);

}  // namespace ferry::control
