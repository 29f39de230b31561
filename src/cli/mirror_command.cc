#include "cli/mirror_command.h"

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

struct MirrorArgs {
  std::string name;
  std::string from;
  std::string to;
  std::vector<std::string> topics;
  std::string group;
  std::string skip_origin;
};

std::string Describe(const v1::MirrorJob& job) {
  std::string out = fmt::format("{}: {} from {} to {}", job.name(),
                                fmt::join(job.topics(), ","), job.source(), job.target());
  if (!job.skip_origin().empty()) out += ", skipping copies from " + job.skip_origin();
  return out;
}

int RunStart(const GlobalOptions& options, const MirrorArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::StartMirrorRequest request;
  v1::MirrorJob* job = request.mutable_job();
  job->set_name(args.name);
  job->set_source(args.from);
  job->set_target(args.to);
  for (const std::string& topic : args.topics) job->add_topics(topic);
  job->set_skip_origin(args.skip_origin);
  v1::MirrorJob started;
  grpc::Status status = admin->StartMirror(NewContext(options).get(), request, &started);
  if (!status.ok()) return Fail(options, "mirror start", status);
  std::cout << "mirroring " << Describe(started) << "\n";
  return 0;
}

int RunStop(const GlobalOptions& options, const MirrorArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::StopMirrorRequest request;
  request.set_name(args.name);
  v1::StopMirrorResponse response;
  grpc::Status status = admin->StopMirror(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "mirror stop", status);
  std::cout << "stopped mirror " << args.name << " (its progress is kept)\n";
  return 0;
}

int RunList(const GlobalOptions& options, const MirrorArgs&) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::ListMirrorsResponse response;
  grpc::Status status =
      admin->ListMirrors(NewContext(options).get(), v1::ListMirrorsRequest(), &response);
  if (!status.ok()) return Fail(options, "mirror list", status);
  if (response.jobs().empty()) {
    std::cout << "no mirror jobs\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "SOURCE", "TARGET", "TOPICS", "SKIP-ORIGIN", "ON THIS NODE"}};
  for (const v1::MirrorJob& job : response.jobs()) {
    rows.push_back({job.name(), job.source(), job.target(),
                    fmt::format("{}", fmt::join(job.topics(), ",")),
                    job.skip_origin().empty() ? "-" : job.skip_origin(), job.state()});
  }
  PrintTable(rows);
  return 0;
}

int RunStatus(const GlobalOptions& options, const MirrorArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::GetMirrorStatusRequest request;
  request.set_name(args.name);
  v1::MirrorStatus response;
  grpc::Status status =
      admin->GetMirrorStatus(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "mirror status", status);
  std::cout << "mirror " << Describe(response.job()) << "  lag " << response.lag()
            << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "PARTITION", "COMMITTED", "SOURCE-HIGH", "TARGET-HIGH", "LAG"}};
  for (const v1::MirrorPartition& p : response.partitions()) {
    rows.push_back({p.topic(), std::to_string(p.partition()),
                    Offset(p.committed_offset()), Offset(p.source_high_watermark()),
                    Offset(p.target_high_watermark()), std::to_string(p.lag())});
  }
  PrintTable(rows);
  return 0;
}

std::string TargetOffset(const v1::TranslatedOffset& t) {
  switch (t.state()) {
    case v1::TranslatedOffset::TRANSLATED:
      return std::to_string(t.target_offset());
    case v1::TranslatedOffset::NOT_YET_MIRRORED:
      return "not yet mirrored";
    default:
      return "-";
  }
}

int RunTranslate(const GlobalOptions& options, const MirrorArgs& args) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::TranslateOffsetsRequest request;
  request.set_name(args.name);
  request.set_group(args.group);
  v1::TranslateOffsetsResponse response;
  grpc::Status status =
      admin->TranslateOffsets(NewContext(options).get(), request, &response);
  if (!status.ok()) return Fail(options, "mirror translate", status);
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "PARTITION", "SOURCE-OFFSET", "TARGET-OFFSET", "MIRRORED"}};
  for (const v1::TranslatedOffset& t : response.offsets()) {
    rows.push_back({t.topic(), std::to_string(t.partition()), Offset(t.source_offset()),
                    TargetOffset(t), Offset(t.mirrored_offset())});
  }
  PrintTable(rows);
  return 0;
}

}  // namespace

void AddMirrorCommands(CLI::App& app, const GlobalOptions& options, Command& command) {
  auto args = std::make_shared<MirrorArgs>();
  auto choose = [&options, &command,
                 args](int (*run)(const GlobalOptions&, const MirrorArgs&)) {
    return [&options, &command, args, run] {
      command = [&options, args, run] { return run(WithAdminDeadline(options), *args); };
    };
  };
  CLI::App* mirror = app.add_subcommand(
      "mirror", "Copy topics between clusters, partition for partition, in order");
  mirror->require_subcommand(1);

  CLI::App* start = mirror->add_subcommand("start", "Start (or continue) a mirror job");
  start->add_option("name", args->name, "Job name")->required();
  start->add_option("--from", args->from, "Source cluster")->required();
  start->add_option("--to", args->to, "Target cluster")->required();
  start->add_option("--topic", args->topics, "Topic to copy (repeatable)")->required();
  start->add_option("--skip-origin", args->skip_origin,
                    "Do not copy records whose ferry.origin names this cluster "
                    "(copies of its own records: a reverse mirror)");
  start->callback(choose(&RunStart));

  CLI::App* stop = mirror->add_subcommand("stop", "Stop a mirror job (progress is kept)");
  stop->add_option("name", args->name, "Job name")->required();
  stop->callback(choose(&RunStop));

  mirror->add_subcommand("list", "List mirror jobs")->callback(choose(&RunList));

  CLI::App* status = mirror->add_subcommand("status", "Per-partition progress and lag");
  status->add_option("name", args->name, "Job name")->required();
  status->callback(choose(&RunStatus));

  CLI::App* translate = mirror->add_subcommand(
      "translate",
      "Per partition, a source group's committed offset and where it starts on the "
      "target");
  translate->add_option("name", args->name, "Job name")->required();
  translate->add_option("--group", args->group, "Consumer group of the source")
      ->required();
  translate->callback(choose(&RunTranslate));
}

}  // namespace ferry::cli
