#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry routes list`: every route (topic glob, write and read clusters).
// `ferry routes put --topic GLOB --write a,b [--read a,b] [--auto-create]
//     [--fallback]`:
//     creates or replaces the route of GLOB on every node.
// `ferry routes delete GLOB`.
// `ferry clusters drain NAME` / `ferry clusters undrain NAME`: move writes
//     off a cluster for maintenance (and back), on every node.
// The chosen command is stored in `command`; `options` and the parsed
// arguments must outlive it.
void AddRoutesCommands(CLI::App& app, const GlobalOptions& options, Command& command);

}  // namespace ferry::cli
