// ferry: the command-line client of a Ferry node.
#include <CLI/CLI.hpp>

#include "cli/acl_command.h"
#include "cli/client_settings_command.h"
#include "cli/connection.h"
#include "cli/consume_command.h"
#include "cli/groups_command.h"
#include "cli/migrate_command.h"
#include "cli/mirror_command.h"
#include "cli/produce_command.h"
#include "cli/routes_command.h"
#include "cli/status_command.h"
#include "cli/token_command.h"
#include "cli/topics_command.h"

int main(int argc, char** argv) {
  CLI::App app{"ferry: command-line client for Ferry"};
  app.require_subcommand(1);
  // Global options such as --server may also follow the subcommand
  // (`ferry consume --server ...`); subcommands inherit this setting.
  app.fallthrough();
  ferry::cli::GlobalOptions options;
  app.add_option("--server", options.server, "ferryd gRPC address (host:port)")
      ->envname("FERRY_SERVER")
      ->capture_default_str();
  ferry::cli::AddSecurityOptions(app, options);
  ferry::cli::Command command;
  ferry::cli::AddStatusCommands(app, options, command);
  ferry::cli::AddTopicsCommands(app, options, command);
  ferry::cli::AddProduceCommand(app, options, command);
  ferry::cli::AddConsumeCommand(app, options, command);
  ferry::cli::AddGroupsCommands(app, options, command);
  ferry::cli::AddRoutesCommands(app, options, command);
  ferry::cli::AddMirrorCommands(app, options, command);
  ferry::cli::AddMigrateCommands(app, options, command);
  ferry::cli::AddClientSettingsCommands(app, options, command);
  ferry::cli::AddTokenCommands(app, command);
  ferry::cli::AddAclCommands(app, options, command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // Prints help or the error; bad flags exit 2, as the commands' own checks do.
    return app.exit(error) == 0 ? 0 : 2;
  }
  if (!ferry::cli::PrepareCredentials(options)) return 2;
  return command();
}
