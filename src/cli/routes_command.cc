#include "cli/routes_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/table.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::cli {
namespace {

struct RoutesArgs {
  std::string topic;
  std::vector<std::string> write;
  std::vector<std::string> read;
  bool auto_create = false;
  bool fallback = false;
  std::string cluster;
};

std::string Clusters(const google::protobuf::RepeatedPtrField<std::string>& names) {
  return names.empty() ? "-" : fmt::format("{}", fmt::join(names, ","));
}

int RunList(const GlobalOptions& options, const RoutesArgs&) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::ListRoutesResponse response;
  grpc::Status status =
      admin->ListRoutes(NewContext(options).get(), v1::ListRoutesRequest(), &response);
  if (!status.ok()) return Fail(options, "routes list", status);
  if (response.routes().empty()) {
    std::cout << "no routes (with one cluster, it serves every topic)\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "WRITE", "READ", "AUTO-CREATE", "FALLBACK"}};
  for (const v1::Route& route : response.routes()) {
    rows.push_back({route.topic(), Clusters(route.write()), Clusters(route.read()),
                    route.auto_create_topics() ? "yes" : "no",
                    route.fallback() ? "yes" : "no"});
  }
  PrintTable(rows);
  return 0;
}

int RunPut(const GlobalOptions& options, const RoutesArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::PutRouteRequest request;
  v1::Route* route = request.mutable_route();
  route->set_topic(args.topic);
  for (const std::string& c : args.write) route->add_write(c);
  for (const std::string& c : args.read) route->add_read(c);
  route->set_auto_create_topics(args.auto_create);
  route->set_fallback(args.fallback);
  v1::Route applied;
  grpc::Status status = admin->PutRoute(NewContext(options).get(), request, &applied);
  if (!status.ok()) return Fail(options, "routes put", status);
  std::cout << fmt::format("route {}: write {}, read {}\n", applied.topic(),
                           Clusters(applied.write()), Clusters(applied.read()));
  return 0;
}

int RunDelete(const GlobalOptions& options, const RoutesArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::DeleteRouteRequest request;
  request.set_topic(args.topic);
  v1::DeleteRouteResponse response;
  grpc::Status status = admin->DeleteRoute(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "routes delete", status);
  std::cout << "deleted route " << args.topic << "\n";
  return 0;
}

int SetDrained(const GlobalOptions& options, const std::string& cluster, bool drained) {
  auto admin = v1::Admin::NewStub(Connect(options));
  grpc::Status status;
  if (drained) {
    v1::DrainClusterRequest request;
    request.set_cluster(cluster);
    v1::DrainClusterResponse response;
    status = admin->DrainCluster(NewContext(options).get(), request, &response);
  } else {
    v1::UndrainClusterRequest request;
    request.set_cluster(cluster);
    v1::UndrainClusterResponse response;
    status = admin->UndrainCluster(NewContext(options).get(), request, &response);
  }
  if (!status.ok()) {
    return Fail(options, drained ? "clusters drain" : "clusters undrain", status);
  }
  std::cout << (drained ? "drained cluster " : "undrained cluster ") << cluster
            << (drained ? ": writes go to the next cluster of each route\n" : "\n");
  return 0;
}

int RunDrain(const GlobalOptions& options, const RoutesArgs& args) {
  return SetDrained(options, args.cluster, true);
}

int RunUndrain(const GlobalOptions& options, const RoutesArgs& args) {
  return SetDrained(options, args.cluster, false);
}

}  // namespace

void AddRoutesCommands(CLI::App& app, const GlobalOptions& options, Command& command) {
  auto args = std::make_shared<RoutesArgs>();
  auto choose = [&options, &command,
                 args](int (*run)(const GlobalOptions&, const RoutesArgs&)) {
    return [&options, &command, args, run] {
      command = [&options, args, run] { return run(WithAdminDeadline(options), *args); };
    };
  };

  CLI::App* routes = app.add_subcommand(
      "routes", "List, put and delete routes (topic glob -> clusters)");
  routes->require_subcommand(1);
  routes->add_subcommand("list", "List routes")->callback(choose(&RunList));

  CLI::App* put = routes->add_subcommand("put", "Create or replace the route of a glob");
  put->add_option("--topic", args->topic, "Topic glob, e.g. orders.*")->required();
  put->add_option("--write", args->write,
                  "Clusters written, in preference order (comma-separated)")
      ->required()
      ->delimiter(',');
  put->add_option("--read", args->read, "Clusters read (default: the write clusters)")
      ->delimiter(',');
  put->add_flag("--auto-create", args->auto_create,
                "Create missing topics on the write cluster when published to");
  put->add_flag("--fallback", args->fallback,
                "Let SDKs publish straight to the write cluster when no node answers");
  put->callback(choose(&RunPut));

  CLI::App* remove = routes->add_subcommand("delete", "Delete the route of a glob");
  remove->add_option("topic", args->topic, "Topic glob of the route")->required();
  remove->callback(choose(&RunDelete));

  CLI::App* clusters = app.add_subcommand(
      "clusters", "Drain a cluster's writes for maintenance, or undo it");
  clusters->require_subcommand(1);
  CLI::App* drain = clusters->add_subcommand(
      "drain", "Move writes off a cluster on every node (survives restarts)");
  drain->add_option("name", args->cluster, "Cluster name")->required();
  drain->callback(choose(&RunDrain));
  CLI::App* undrain =
      clusters->add_subcommand("undrain", "Let writes return to a drained cluster");
  undrain->add_option("name", args->cluster, "Cluster name")->required();
  undrain->callback(choose(&RunUndrain));
}

}  // namespace ferry::cli
