#include "cli/groups_command.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "absl/time/time.h"
#include "cli/table.h"
#include "common/strings.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::cli {
namespace {

struct GroupsArgs {
  std::string group;
  std::string cluster;
  std::vector<std::string> topics;
  std::string to;
  std::string filter;
};

int RunList(const GlobalOptions& options, const GroupsArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::ListGroupsRequest request;
  request.set_cluster(args.cluster);
  v1::ListGroupsResponse response;
  grpc::Status status = admin->ListGroups(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "groups list", status);
  if (response.groups().empty()) {
    std::cout << "no groups\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"CLUSTER", "GROUP", "STATE", "PAUSED"}};
  for (const auto& g : response.groups()) {
    rows.push_back({g.cluster(), g.name(), g.state().empty() ? "-" : g.state(),
                    g.paused() ? "yes" : "no"});
  }
  PrintTable(rows);
  return 0;
}

int RunDescribe(const GlobalOptions& options, const GroupsArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::DescribeGroupRequest request;
  request.set_group(args.group);
  request.set_cluster(args.cluster);
  v1::Group group;
  grpc::Status status = admin->DescribeGroup(NewContext(options).get(), request, &group);
  if (!status.ok()) return Fail(options, "groups describe", status);
  std::cout << "group " << group.name() << "  cluster " << group.cluster() << "  state "
            << group.state() << (group.paused() ? "  PAUSED" : "") << "\n";
  if (!group.filter().empty()) std::cout << "filter " << group.filter() << "\n";
  if (!group.members().empty()) {
    std::vector<std::vector<std::string>> rows = {{"NODE", "MEMBER", "STREAMS"}};
    for (const auto& m : group.members()) {
      std::string streams = m.streams().empty() ? "-" : "";
      for (const auto& s : m.streams()) {
        if (!streams.empty()) streams += ", ";
        streams += fmt::format("{} ({}, {} outstanding{})", s.stream_id(),
                               s.client_id().empty() ? "-" : s.client_id(),
                               s.outstanding_messages(),
                               s.filter().empty() ? "" : ", filter " + s.filter());
      }
      rows.push_back({m.node_id(), m.member_id().empty() ? "-" : m.member_id(), streams});
    }
    PrintTable(rows);
  }
  std::vector<std::vector<std::string>> rows = {
      {"CLUSTER", "TOPIC", "PARTITION", "NODE", "COMMITTED", "HIGH", "LAG", "IN-FLIGHT"}};
  for (const auto& p : group.partitions()) {
    rows.push_back({p.cluster(), p.topic(), std::to_string(p.partition()),
                    p.node_id().empty() ? "-" : p.node_id(), Offset(p.committed_offset()),
                    Offset(p.high_watermark()), std::to_string(p.lag()),
                    std::to_string(p.in_flight())});
  }
  PrintTable(rows);
  return 0;
}

int RunSeek(const GlobalOptions& options, const GroupsArgs& args) {
  v1::SeekRequest request;
  request.set_group(args.group);
  request.set_cluster(args.cluster);
  for (const auto& t : args.topics) request.add_topics(t);
  if (std::string error = ParseSeekTarget(args.to, args.topics, request.mutable_to());
      !error.empty()) {
    std::cerr << "ferry: seek: --to: " << error << "\n";
    return 2;
  }
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::SeekResponse response;
  grpc::Status status = admin->Seek(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "seek", status);
  std::vector<std::vector<std::string>> rows = {
      {"CLUSTER", "TOPIC", "PARTITION", "OFFSET"}};
  for (const auto& o : response.offsets()) {
    rows.push_back({o.cluster(), o.topic(), std::to_string(o.partition()),
                    std::to_string(o.offset())});
  }
  std::cout << "moved group " << args.group << "\n";
  PrintTable(rows);
  return 0;
}

int RunPause(const GlobalOptions& options, const GroupsArgs& args, bool pause) {
  auto admin = v1::Admin::NewStub(Connect(options));
  grpc::Status status;
  if (pause) {
    v1::PauseGroupRequest request;
    request.set_group(args.group);
    v1::PauseGroupResponse response;
    status = admin->PauseGroup(NewContext(options).get(), request, &response);
  } else {
    v1::ResumeGroupRequest request;
    request.set_group(args.group);
    v1::ResumeGroupResponse response;
    status = admin->ResumeGroup(NewContext(options).get(), request, &response);
  }
  if (!status.ok()) return Fail(options, pause ? "pause" : "resume", status);
  std::cout << (pause ? "paused" : "resumed") << " group " << args.group << "\n";
  return 0;
}

int RunFilter(const GlobalOptions& options, const GroupsArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::SetGroupFilterRequest request;
  request.set_group(args.group);
  request.set_filter(args.filter);
  v1::SetGroupFilterResponse response;
  grpc::Status status =
      admin->SetGroupFilter(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "groups filter", status);
  if (args.filter.empty()) {
    std::cout << "cleared the filter of group " << args.group << "\n";
  } else {
    std::cout << "group " << args.group << " now delivers only messages matching "
              << args.filter << "\n";
  }
  return 0;
}

}  // namespace

std::string ParseSeekTarget(const std::string& to, const std::vector<std::string>& topics,
                            v1::Position* position) {
  if (to == "earliest") {
    position->set_earliest(true);
    return "";
  }
  if (to == "latest") {
    position->set_latest(true);
    return "";
  }
  absl::Time time;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, to, &time, &error)) {
    position->mutable_timestamp()->set_seconds(absl::ToUnixSeconds(time));
    position->mutable_timestamp()->set_nanos(
        static_cast<int32_t>(absl::ToUnixNanos(time) % 1000000000));
    return "";
  }
  if (to.find(':') == std::string::npos || to.find('-') != std::string::npos) {
    return fmt::format(
        "\"{}\" is not earliest, latest, an RFC 3339 time (2026-11-22T10:00:00Z) or "
        "P:OFFSET[,P:OFFSET...]",
        to);
  }
  if (topics.size() != 1) return "P:OFFSET lists need exactly one --topic";
  for (std::string_view item : Split(to, ',')) {
    const size_t colon = item.find(':');
    int32_t partition = 0;
    int64_t offset = 0;
    if (colon == std::string_view::npos || !ParseInt(item.substr(0, colon), partition) ||
        !ParseInt(item.substr(colon + 1), offset) || partition < 0 || offset < 0) {
      return fmt::format("\"{}\" is not PARTITION:OFFSET", item);
    }
    v1::PartitionOffset& out = *position->mutable_offsets()->add_offsets();
    out.set_topic(topics[0]);
    out.set_partition(partition);
    out.set_offset(offset);
  }
  return "";
}

void AddGroupsCommands(CLI::App& app, const GlobalOptions& options, Command& command) {
  auto args = std::make_shared<GroupsArgs>();
  auto choose = [&options, &command, args](auto run) {
    return [&options, &command, args, run] {
      command = [&options, args, run] { return run(WithAdminDeadline(options), *args); };
    };
  };

  CLI::App* groups = app.add_subcommand("groups", "List and describe consumer groups");
  groups->require_subcommand(1);
  CLI::App* list = groups->add_subcommand("list", "List consumer groups");
  list->add_option("--cluster", args->cluster, "Only this cluster");
  list->callback(choose(&RunList));
  CLI::App* describe = groups->add_subcommand(
      "describe", "Members, and per partition: owner, committed offset, lag, in flight");
  describe->add_option("group", args->group, "Group name")->required();
  describe->add_option("--cluster", args->cluster,
                       "Only this cluster (default: every cluster the group reads)");
  describe->callback(choose(&RunDescribe));
  CLI::App* filter = groups->add_subcommand(
      "filter",
      "Set the filter every node applies to a group's messages, live and after "
      "restarts (docs/filters.md); '' clears it");
  filter->add_option("group", args->group, "Group name")->required();
  filter->add_option("filter", args->filter, "Filter expression; '' for none")
      ->required();
  filter->callback(choose(&RunFilter));

  CLI::App* seek = app.add_subcommand(
      "seek", "Move a consumer group (live or idle) to a time, an end, or offsets");
  seek->add_option("--group", args->group, "Group name")->required();
  seek->add_option("--topic", args->topics,
                   "Topic to move (repeatable; default: all of the group's topics)");
  seek->add_option("--to", args->to,
                   "earliest | latest | RFC 3339 time | PARTITION:OFFSET[,...]")
      ->required();
  seek->add_option("--cluster", args->cluster,
                   "Only this cluster (default: every cluster the group reads)");
  seek->callback(choose(&RunSeek));

  for (bool pause : {true, false}) {
    CLI::App* sub = app.add_subcommand(
        pause ? "pause" : "resume",
        pause ? "Stop delivery of a group on every node (survives restarts)"
              : "Restart delivery of a paused group");
    sub->add_option("--group", args->group, "Group name")->required();
    sub->callback(choose([pause](const GlobalOptions& o, const GroupsArgs& a) {
      return RunPause(o, a, pause);
    }));
  }
}

}  // namespace ferry::cli
