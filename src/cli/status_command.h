#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry status`: the node's health, its clusters, their brokers and topics.
// `ferry version`: client version and, when reachable, the node's.
// The chosen command is stored in `command`.
void AddStatusCommands(CLI::App& app, const GlobalOptions& options, Command& command);

}  // namespace ferry::cli
