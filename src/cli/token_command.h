#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry token create --principal P [--id ID] [--expires-in D]`: makes a new
// bearer token locally (no node is contacted) and prints two lines: the
// token, for the client, and its line for ferryd's auth.tokens_file, which
// holds only a salted hash.
void AddTokenCommands(CLI::App& app, Command& command);

}  // namespace ferry::cli
