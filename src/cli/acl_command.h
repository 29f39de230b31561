#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry acl list`: the rules the node applies, with their source (config:
//     auth.acl; runtime: the control topic).
// `ferry acl add --principal P --resource R --operations publish,describe`:
//     allows them on every node, effective on each client's next call.
// `ferry acl remove --principal P --resource R --operations publish`:
//     withdraws them from the runtime rule.
// Rules are checked here first (exit 2 naming the part), then by the node.
// The chosen command is stored in `command`; `options` and the parsed
// arguments must outlive it.
void AddAclCommands(CLI::App& app, const GlobalOptions& options, Command& command);

}  // namespace ferry::cli
