#include "cli/migrate_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <memory>
#include <string>

#include "cli/table.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::cli {
namespace {

// Stages wait for barriers and for the mirror (the node gives up after 90 s
// per wait); the CLI waits longer so the node's reason is what is shown.
constexpr absl::Duration kStageDeadline = absl::Minutes(5);

struct MigrateArgs {
  std::string topic;
  std::string from;
  std::string to;
  std::string stage;
};

// "2026-12-04 23:41:07Z", or "-" when the node recorded no time.
std::string When(bool recorded, const google::protobuf::Timestamp& time) {
  if (!recorded) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%SZ", absl::FromUnixSeconds(time.seconds()),
                          absl::UTCTimeZone());
}

void Print(const v1::Migration& migration) {
  for (const std::string& step : migration.steps()) std::cout << "  " << step << "\n";
  std::cout << "migration of " << migration.topic() << " from " << migration.from()
            << " to " << migration.to() << ": stage " << migration.stage() << "\n";
  std::cout << "  groups      "
            << (migration.groups().empty()
                    ? std::string("(none yet)")
                    : fmt::format("{}", fmt::join(migration.groups(), ", ")))
            << "\n";
  std::cout << "  mirror lag  "
            << (migration.mirror_lag() < 0 ? std::string("(no mirror)")
                                           : fmt::format("{}", migration.mirror_lag()))
            << "\n";
  std::cout << "  started     " << When(migration.has_started(), migration.started())
            << ", last change " << When(migration.has_updated(), migration.updated())
            << "\n";
}

int Finish(const GlobalOptions& options, std::string_view what,
           const grpc::Status& status, const v1::Migration& migration) {
  if (!status.ok()) return Fail(options, what, status);
  Print(migration);
  return 0;
}

int RunList(const GlobalOptions& options, const std::string& stage) {
  v1::ListMigrationsRequest request;
  request.set_stage(stage);
  v1::ListMigrationsResponse response;
  grpc::Status status =
      v1::Admin::NewStub(Connect(options))
          ->ListMigrations(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "migrate list", status);
  if (response.migrations().empty()) {
    std::cout << (stage.empty() ? "no migrations\n"
                                : fmt::format("no migrations at stage {}\n", stage));
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "FROM", "TO", "STAGE", "MIRROR-LAG", "GROUPS", "STARTED", "UPDATED"}};
  for (const v1::Migration& m : response.migrations()) {
    rows.push_back(
        {m.topic(), m.from(), m.to(), m.stage(),
         m.mirror_lag() < 0 ? "-" : std::to_string(m.mirror_lag()),
         m.groups().empty() ? "-" : fmt::format("{}", fmt::join(m.groups(), ",")),
         When(m.has_started(), m.started()), When(m.has_updated(), m.updated())});
  }
  PrintTable(rows);
  return 0;
}

GlobalOptions ForStages(const GlobalOptions& options) {
  GlobalOptions longer = options;
  longer.timeout = std::max(options.timeout, kStageDeadline);
  return longer;
}

}  // namespace

void AddMigrateCommands(CLI::App& app, const GlobalOptions& options, Command& command) {
  auto args = std::make_shared<MigrateArgs>();
  CLI::App* migrate = app.add_subcommand(
      "migrate", "Move a live topic to another cluster, stage by stage (with rollback)");
  migrate->require_subcommand(1);
  CLI::App* list = migrate->add_subcommand(
      "list", "Every migration with its stage, mirror lag, groups and times");
  list->add_option("--stage", args->stage, "Only migrations at this stage");
  list->callback([&options, &command, args] {
    command = [&options, args] {
      return RunList(WithAdminDeadline(options), args->stage);
    };
  });
  auto add = [&](const std::string& name, const std::string& help) {
    CLI::App* sub = migrate->add_subcommand(name, help);
    sub->add_option("--topic", args->topic, "The topic")->required();
    return sub;
  };

  CLI::App* start = add("start", "Plan the move and start mirroring FROM to TO");
  start->add_option("--from", args->from, "Cluster the topic lives on")->required();
  start->add_option("--to", args->to, "Cluster to move it to")->required();
  start->callback([&options, &command, args] {
    command = [&options, args] {
      GlobalOptions o = ForStages(options);
      v1::StartMigrationRequest request;
      request.set_topic(args->topic);
      request.set_from(args->from);
      request.set_to(args->to);
      v1::Migration migration;
      grpc::Status status =
          v1::Admin::NewStub(Connect(o))
              ->StartMigration(NewContext(o).get(), request, &migration);
      return Finish(o, "migrate start", status, migration);
    };
  });
  for (const auto& [stage, help] : std::vector<std::pair<std::string, std::string>>{
           {"consumers", "Move every consumer group's reads to the new cluster"},
           {"producers", "Move writes to the new cluster"},
           {"finish", "Stop the mirror once it has no lag"}}) {
    add(stage, help)->callback([&options, &command, args, stage = stage] {
      command = [&options, args, stage] {
        GlobalOptions o = ForStages(options);
        v1::AdvanceMigrationRequest request;
        request.set_topic(args->topic);
        request.set_stage(stage);
        v1::Migration migration;
        grpc::Status status =
            v1::Admin::NewStub(Connect(o))
                ->AdvanceMigration(NewContext(o).get(), request, &migration);
        return Finish(o, "migrate " + stage, status, migration);
      };
    });
  }
  add("rollback", "Return the topic's readers to the old cluster")
      ->callback([&options, &command, args] {
        command = [&options, args] {
          GlobalOptions o = ForStages(options);
          v1::RollbackMigrationRequest request;
          request.set_topic(args->topic);
          v1::Migration migration;
          grpc::Status status =
              v1::Admin::NewStub(Connect(o))
                  ->RollbackMigration(NewContext(o).get(), request, &migration);
          return Finish(o, "migrate rollback", status, migration);
        };
      });
  add("status", "Show the stage, the groups and the mirror's lag")
      ->callback([&options, &command, args] {
        command = [&options, args] {
          GlobalOptions o = WithAdminDeadline(options);
          v1::GetMigrationRequest request;
          request.set_topic(args->topic);
          v1::Migration migration;
          grpc::Status status =
              v1::Admin::NewStub(Connect(o))
                  ->GetMigration(NewContext(o).get(), request, &migration);
          return Finish(o, "migrate status", status, migration);
        };
      });
}

}  // namespace ferry::cli
