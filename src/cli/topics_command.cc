#include "cli/topics_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/table.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::cli {
namespace {

// What the topics subcommands parse into; shared by their callbacks and the
// chosen command, so it lives as long as both.
struct TopicsArgs {
  std::string name;
  std::string cluster;
  int partitions = 0;
  int replication_factor = 0;
  std::vector<std::string> configs;  // KEY=VALUE
};

int RunList(const GlobalOptions& options, const TopicsArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::ListTopicsRequest request;
  request.set_cluster(args.cluster);
  v1::ListTopicsResponse response;
  grpc::Status status = admin->ListTopics(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "topics list", status);
  if (response.topics().empty()) {
    std::cout << "no topics\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"CLUSTER", "TOPIC"}};
  for (const v1::Topic& topic : response.topics()) {
    rows.push_back({topic.cluster(), topic.name()});
  }
  PrintTable(rows);
  return 0;
}

int RunCreate(const GlobalOptions& options, const TopicsArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::CreateTopicRequest request;
  request.set_name(args.name);
  request.set_cluster(args.cluster);
  request.set_partitions(args.partitions);
  request.set_replication_factor(args.replication_factor);
  for (const std::string& config : args.configs) {
    // The option's validator guarantees the '='.
    const size_t eq = config.find('=');
    (*request.mutable_configs())[config.substr(0, eq)] = config.substr(eq + 1);
  }
  v1::Topic topic;
  grpc::Status status = admin->CreateTopic(NewContext(options).get(), request, &topic);
  if (!status.ok()) return Fail(options, "topics create", status);
  std::cout << "created topic " << topic.name() << " on " << topic.cluster();
  if (topic.partitions_size() > 0) {
    std::cout << " with " << topic.partitions_size()
              << (topic.partitions_size() == 1 ? " partition" : " partitions");
  }
  std::cout << "\n";
  return 0;
}

std::string Ids(const google::protobuf::RepeatedField<int32_t>& ids) {
  return ids.empty() ? "-" : fmt::format("{}", fmt::join(ids, ","));
}

int RunDescribe(const GlobalOptions& options, const TopicsArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::DescribeTopicRequest request;
  request.set_name(args.name);
  request.set_cluster(args.cluster);
  v1::Topic topic;
  grpc::Status status = admin->DescribeTopic(NewContext(options).get(), request, &topic);
  if (!status.ok()) return Fail(options, "topics describe", status);
  std::cout << "topic " << topic.name() << "  cluster " << topic.cluster()
            << "  partitions " << topic.partitions_size() << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"PARTITION", "LEADER", "REPLICAS", "ISR", "LOW", "HIGH"}};
  for (const v1::TopicPartition& p : topic.partitions()) {
    rows.push_back({std::to_string(p.partition()),
                    p.leader() < 0 ? "none" : std::to_string(p.leader()),
                    Ids(p.replicas()), Ids(p.in_sync_replicas()),
                    Offset(p.low_watermark()), Offset(p.high_watermark())});
  }
  PrintTable(rows);
  return 0;
}

int RunDelete(const GlobalOptions& options, const TopicsArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::DeleteTopicRequest request;
  request.set_name(args.name);
  request.set_cluster(args.cluster);
  v1::DeleteTopicResponse response;
  grpc::Status status = admin->DeleteTopic(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "topics delete", status);
  std::cout << "deleted topic " << args.name;
  if (!args.cluster.empty()) std::cout << " on " << args.cluster;
  std::cout << "\n";
  return 0;
}

}  // namespace

void AddTopicsCommands(CLI::App& app, const GlobalOptions& options, Command& command) {
  auto args = std::make_shared<TopicsArgs>();
  CLI::App* topics =
      app.add_subcommand("topics", "List, create, describe and delete topics");
  topics->require_subcommand(1);

  // Each subcommand's callback picks the command; the command keeps `args`.
  auto choose = [&options, &command,
                 args](int (*run)(const GlobalOptions&, const TopicsArgs&)) {
    return [&options, &command, args, run] {
      command = [&options, args, run] { return run(WithAdminDeadline(options), *args); };
    };
  };
  auto add_cluster = [&args](CLI::App* sub, std::string_view help) {
    sub->add_option("--cluster", args->cluster, std::string(help));
  };
  auto add_name = [&args](CLI::App* sub) {
    sub->add_option("name", args->name, "Topic name")->required();
  };

  CLI::App* list = topics->add_subcommand("list", "List topics of every cluster");
  add_cluster(list, "Only this cluster");
  list->callback(choose(&RunList));

  CLI::App* create = topics->add_subcommand("create", "Create a topic");
  add_name(create);
  create->add_option("--partitions", args->partitions,
                     "Partition count (0: the broker's default)");
  create->add_option("--replication-factor", args->replication_factor,
                     "Replicas per partition (0: the broker's default)");
  add_cluster(create, "Cluster to create it on (default: the one its route writes)");
  create
      ->add_option("--config", args->configs,
                   "Topic config KEY=VALUE, e.g. retention.ms=86400000 (repeatable)")
      ->allow_extra_args(false)
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            const size_t eq = value.find('=');
            return eq == std::string::npos || eq == 0 ? "expected KEY=VALUE" : "";
          },
          "KEY=VALUE"));
  create->callback(choose(&RunCreate));

  CLI::App* describe = topics->add_subcommand(
      "describe", "Show a topic's partitions: leader, replicas, ISR, watermarks");
  add_name(describe);
  add_cluster(describe, "Cluster to look in (default: the one its route writes)");
  describe->callback(choose(&RunDescribe));

  CLI::App* remove = topics->add_subcommand("delete", "Delete a topic and its records");
  add_name(remove);
  add_cluster(remove, "Cluster to delete it from (default: the one its route writes)");
  remove->callback(choose(&RunDelete));
}

}  // namespace ferry::cli
