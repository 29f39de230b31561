#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry produce --topic T [--key K | --key-delimiter D] [--header k=v]...`:
// one message per stdin line, published with the C++ SDK; prints a summary
// and exits non-zero if any message failed.
void AddProduceCommand(CLI::App& app, const GlobalOptions& options, Command& command);

}  // namespace ferry::cli
