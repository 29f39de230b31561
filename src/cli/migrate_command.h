#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// The migration playbook (docs/migration.md), one command per stage:
// `ferry migrate start --topic T --from A --to B`, then
// `ferry migrate consumers|producers|finish --topic T`,
// `ferry migrate rollback --topic T` and `ferry migrate status --topic T`.
// Each prints the stage reached and the steps it ran with their durations.
// The chosen command is stored in `command`; `options` must outlive it.
void AddMigrateCommands(CLI::App& app, const GlobalOptions& options, Command& command);

}  // namespace ferry::cli
