#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry client-settings show`: the SDK settings the nodes push to clients.
// `ferry client-settings set [--linger D] [--max-batch-messages N]
//     [--max-batch-bytes N] [--request-timeout D] [--delivery-timeout D]`:
//     replaces them all on every node (unnamed ones: the SDK's default).
// The chosen command is stored in `command`; `options` and the parsed
// arguments must outlive it.
void AddClientSettingsCommands(CLI::App& app, const GlobalOptions& options,
                               Command& command);

}  // namespace ferry::cli
