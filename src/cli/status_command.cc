#include "cli/status_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "cli/table.h"
#include "common/version.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::cli {
namespace {

std::string_view StateName(v1::Cluster::State state) {
  switch (state) {
    case v1::Cluster::STATE_UP:
      return "up";
    case v1::Cluster::STATE_DOWN:
      return "down";
    case v1::Cluster::STATE_CONNECTING:
      return "connecting";
    default:
      return "unknown";
  }
}

int RunStatus(const GlobalOptions& options) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::Node node;
  grpc::Status status = admin->GetNode(NewContext(options).get(), {}, &node);
  if (!status.ok()) {
    std::cerr << DescribeError(options, "status", status) << "\n";
    return 1;
  }
  v1::ListClustersRequest request;
  request.set_include_topics(true);
  v1::ListClustersResponse clusters;
  status = admin->ListClusters(NewContext(options).get(), request, &clusters);
  if (!status.ok()) {
    std::cerr << DescribeError(options, "status", status) << "\n";
    return 1;
  }
  std::cout << "node " << node.id() << "  " << node.health() << "  version "
            << node.version() << "  up " << node.uptime().seconds() << "s  grpc "
            << node.grpc_address() << "  http " << node.http_address() << "\n";
  if (clusters.clusters().empty()) {
    std::cout << "no clusters configured\n";
  }
  for (const v1::Cluster& cluster : clusters.clusters()) {
    std::cout << "cluster " << cluster.name() << "  " << cluster.type() << "  "
              << cluster.bootstrap() << "  " << StateName(cluster.state());
    // Nodes older than the circuit breakers leave it empty.
    if (!cluster.breaker().empty()) std::cout << "  breaker " << cluster.breaker();
    std::cout << "\n";
    if (!cluster.error().empty()) std::cout << "  error   " << cluster.error() << "\n";
    if (cluster.drained()) {
      std::cout << "  writes  drained by an operator (ferry clusters undrain "
                << cluster.name() << ")\n";
    }
    for (const v1::Broker& broker : cluster.brokers()) {
      std::cout << "  broker  " << broker.id() << "  " << broker.host() << ":"
                << broker.port() << "\n";
    }
    if (cluster.state() == v1::Cluster::STATE_UP) {
      std::cout << "  topics  "
                << (cluster.topics().empty()
                        ? "(none)"
                        : fmt::format("{}", fmt::join(cluster.topics(), ", ")))
                << "\n";
    }
  }
  return 0;
}

int RunNodes(const GlobalOptions& options) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::ListNodesResponse nodes;
  grpc::Status status = admin->ListNodes(NewContext(options).get(), {}, &nodes);
  if (!status.ok()) {
    std::cerr << DescribeError(options, "nodes", status) << "\n";
    return 1;
  }
  const int64_t now_s = absl::ToUnixSeconds(absl::Now());
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "STATE", "VERSION", "UP", "LAST SEEN", "APPLIED", "GRPC"}};
  for (const v1::Node& node : nodes.nodes()) {
    rows.push_back(
        {node.id(), node.state(), node.version(),
         node.state() == "live" ? fmt::format("{}s", node.uptime().seconds()) : "-",
         fmt::format("{}s ago", std::max<int64_t>(0, now_s - node.last_seen().seconds())),
         fmt::format("{}", node.applied_control_offset()), node.grpc_address()});
  }
  PrintTable(rows);
  return 0;
}

int RunVersion(const GlobalOptions& options) {
  std::cout << "ferry " << kVersion << "\n";
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::Node node;
  GlobalOptions quick = options;
  quick.timeout = absl::Seconds(2);
  grpc::Status status = admin->GetNode(NewContext(quick).get(), {}, &node);
  if (status.ok()) {
    std::cout << "ferryd " << node.version() << " at " << options.server << "\n";
  } else {
    std::cout << "ferryd unreachable at " << options.server << "\n";
  }
  return 0;
}

}  // namespace

void AddStatusCommands(CLI::App& app, const GlobalOptions& options, Command& command) {
  app.add_subcommand("status", "Show node health, clusters, brokers and topics")
      ->callback([&] { command = [&] { return RunStatus(options); }; });
  app.add_subcommand("nodes",
                     "List the nodes heard from: live ones, then recently departed ones")
      ->callback([&] { command = [&] { return RunNodes(options); }; });
  app.add_subcommand("version", "Show the CLI's and the node's version")->callback([&] {
    command = [&] { return RunVersion(options); };
  });
}

}  // namespace ferry::cli
