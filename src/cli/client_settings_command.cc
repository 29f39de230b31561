#include "cli/client_settings_command.h"

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "ferry/v1/admin.grpc.pb.h"

namespace ferry::cli {
namespace {

struct SettingsArgs {
  std::string linger;
  int64_t max_batch_messages = 0;
  int64_t max_batch_bytes = 0;
  std::string request_timeout;
  std::string delivery_timeout;
};

std::string Show(const google::protobuf::Duration& d) {
  return absl::FormatDuration(absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()));
}

// Empty `text`: not set. False (and a message naming `flag`) if it is no
// duration.
bool SetDuration(const std::string& flag, const std::string& text,
                 google::protobuf::Duration* (v1::ClientSettings::*field)(),
                 v1::ClientSettings& settings) {
  if (text.empty()) return true;
  absl::Duration d;
  if (!absl::ParseDuration(text, &d)) {
    std::cerr << fmt::format(
        "ferry client-settings set: {}: \"{}\" is not a duration "
        "(write e.g. 5ms, 30s)\n",
        flag, text);
    return false;
  }
  google::protobuf::Duration* out = (settings.*field)();
  out->set_seconds(absl::IDivDuration(d, absl::Seconds(1), &d));
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return true;
}

void Print(const v1::ClientSettings& s) {
  auto or_default = [](bool set, const std::string& value) {
    return set ? value : std::string("(SDK default)");
  };
  std::cout << "linger            " << or_default(s.has_linger(), Show(s.linger()))
            << "\n"
            << "max batch messages "
            << or_default(s.max_batch_messages() > 0,
                          std::to_string(s.max_batch_messages()))
            << "\nmax batch bytes   "
            << or_default(s.max_batch_bytes() > 0, std::to_string(s.max_batch_bytes()))
            << "\nrequest timeout   "
            << or_default(s.has_request_timeout(), Show(s.request_timeout()))
            << "\ndelivery timeout  "
            << or_default(s.has_delivery_timeout(), Show(s.delivery_timeout())) << "\n";
}

int RunShow(const GlobalOptions& options, const SettingsArgs&) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::GetClientConfigResponse response;
  grpc::Status status = admin->GetClientConfig(NewContext(options).get(),
                                               v1::GetClientConfigRequest(), &response);
  if (!status.ok()) return Fail(options, "client-settings show", status);
  Print(response.settings());
  return 0;
}

int RunSet(const GlobalOptions& options, const SettingsArgs& args) {
  v1::SetClientSettingsRequest request;
  v1::ClientSettings& settings = *request.mutable_settings();
  if (!SetDuration("--linger", args.linger, &v1::ClientSettings::mutable_linger,
                   settings) ||
      !SetDuration("--request-timeout", args.request_timeout,
                   &v1::ClientSettings::mutable_request_timeout, settings) ||
      !SetDuration("--delivery-timeout", args.delivery_timeout,
                   &v1::ClientSettings::mutable_delivery_timeout, settings)) {
    return 2;
  }
  settings.set_max_batch_messages(args.max_batch_messages);
  settings.set_max_batch_bytes(args.max_batch_bytes);
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::ClientSettings applied;
  grpc::Status status =
      admin->SetClientSettings(NewContext(options).get(), request, &applied);
  if (!status.ok()) return Fail(options, "client-settings set", status);
  Print(applied);
  return 0;
}

}  // namespace

void AddClientSettingsCommands(CLI::App& app, const GlobalOptions& options,
                               Command& command) {
  auto args = std::make_shared<SettingsArgs>();
  auto choose = [&options, &command,
                 args](int (*run)(const GlobalOptions&, const SettingsArgs&)) {
    return [&options, &command, args, run] {
      command = [&options, args, run] { return run(WithAdminDeadline(options), *args); };
    };
  };
  CLI::App* settings = app.add_subcommand(
      "client-settings", "SDK settings the nodes push to clients (unless set in code)");
  settings->require_subcommand(1);
  settings->add_subcommand("show", "Show the pushed settings")
      ->callback(choose(&RunShow));
  CLI::App* set = settings->add_subcommand(
      "set", "Replace the pushed settings on every node (unnamed ones: SDK default)");
  set->add_option("--linger", args->linger, "e.g. 5ms (0..1m)");
  set->add_option("--max-batch-messages", args->max_batch_messages, "1..100000");
  set->add_option("--max-batch-bytes", args->max_batch_bytes, "1024..268435456");
  set->add_option("--request-timeout", args->request_timeout, "e.g. 30s (1s..10m)");
  set->add_option("--delivery-timeout", args->delivery_timeout, "e.g. 2m (1s..1h)");
  set->callback(choose(&RunSet));
}

}  // namespace ferry::cli
