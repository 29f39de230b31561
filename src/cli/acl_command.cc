#include "cli/acl_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/table.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "security/acl_rule.h"

namespace ferry::cli {
namespace {

struct AclArgs {
  std::string principal;
  std::string resource;
  std::vector<std::string> operations;
};

std::string Operations(const google::protobuf::RepeatedPtrField<std::string>& names) {
  return names.empty() ? "-" : fmt::format("{}", fmt::join(names, ","));
}

int RunList(const GlobalOptions& options, const AclArgs&) {
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::ListAclsResponse response;
  grpc::Status status =
      admin->ListAcls(NewContext(options).get(), v1::ListAclsRequest(), &response);
  if (!status.ok()) return Fail(options, "acl list", status);
  if (!response.enforced()) {
    std::cout << "auth.enabled is off on this node: the rules are not checked\n";
  }
  if (response.rules().empty()) {
    std::cout << "no rules (with auth on, everything is denied)\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"PRINCIPAL", "RESOURCE", "OPERATIONS", "SOURCE"}};
  for (const v1::AclRule& rule : response.rules()) {
    rows.push_back({rule.principal(), rule.resource(), Operations(rule.operations()),
                    rule.source()});
  }
  PrintTable(rows);
  return 0;
}

// The node checks again; checking here names the problem without a round
// trip, and with exit code 2 like other bad arguments.
bool Valid(const AclArgs& args, std::string_view what) {
  auto rule = security::ParseAclRule(args.principal, args.resource,
                                     fmt::format("{}", fmt::join(args.operations, ",")));
  if (rule.ok()) return true;
  std::cerr << fmt::format("ferry: {}: {}\n", what, std::string(rule.status().message()));
  return false;
}

template <typename Request>
Request MakeRequest(const AclArgs& args) {
  Request request;
  request.set_principal(args.principal);
  request.set_resource(args.resource);
  for (const std::string& operation : args.operations) request.add_operations(operation);
  return request;
}

int RunAdd(const GlobalOptions& options, const AclArgs& args) {
  if (!Valid(args, "acl add")) return 2;
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::AclRule rule;
  grpc::Status status = admin->AddAcl(NewContext(options).get(),
                                      MakeRequest<v1::AddAclRequest>(args), &rule);
  if (!status.ok()) return Fail(options, "acl add", status);
  std::cout << fmt::format("runtime rule: {} {} {}\n", rule.principal(), rule.resource(),
                           Operations(rule.operations()));
  return 0;
}

int RunRemove(const GlobalOptions& options, const AclArgs& args) {
  if (!Valid(args, "acl remove")) return 2;
  auto admin = v1::Admin::NewStub(Connect(options));
  v1::AclRule rule;
  grpc::Status status = admin->RemoveAcl(NewContext(options).get(),
                                         MakeRequest<v1::RemoveAclRequest>(args), &rule);
  if (!status.ok()) return Fail(options, "acl remove", status);
  if (rule.operations().empty()) {
    std::cout << fmt::format("runtime rule removed: {} {}\n", rule.principal(),
                             rule.resource());
  } else {
    std::cout << fmt::format("runtime rule: {} {} {}\n", rule.principal(),
                             rule.resource(), Operations(rule.operations()));
  }
  return 0;
}

void AddRuleOptions(CLI::App* command, AclArgs& args) {
  command
      ->add_option("--principal", args.principal,
                   "Certificate CN/SAN or token principal; * for every client")
      ->required();
  command
      ->add_option("--resource", args.resource,
                   "topic:GLOB, group:GLOB, cluster or admin (quote globs)")
      ->required();
  command
      ->add_option("--operations", args.operations,
                   "publish, subscribe, describe, seek, pause, admin or all "
                   "(comma-separated)")
      ->required()
      ->delimiter(',');
}

}  // namespace

void AddAclCommands(CLI::App& app, const GlobalOptions& options, Command& command) {
  auto args = std::make_shared<AclArgs>();
  auto choose = [&options, &command,
                 args](int (*run)(const GlobalOptions&, const AclArgs&)) {
    return [&options, &command, args, run] {
      command = [&options, args, run] { return run(WithAdminDeadline(options), *args); };
    };
  };
  CLI::App* acl =
      app.add_subcommand("acl", "List, add and remove access rules (auth.enabled)");
  acl->require_subcommand(1);
  acl->add_subcommand("list", "List the rules and where each comes from")
      ->callback(choose(&RunList));
  CLI::App* add =
      acl->add_subcommand("add", "Allow operations on a resource, on every node");
  AddRuleOptions(add, *args);
  add->callback(choose(&RunAdd));
  CLI::App* remove = acl->add_subcommand(
      "remove", "Withdraw operations from a runtime rule, on every node");
  AddRuleOptions(remove, *args);
  remove->callback(choose(&RunRemove));
}

}  // namespace ferry::cli
