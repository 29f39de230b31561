#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry consume --group G --topic T [--topic T2]... [--from earliest|latest|TIME]
// [--count N] [--ordering none|key|partition] [--filter EXPR] [--format line|json]`:
// prints each message of the group's subscription that matches the filter
// (line: the value; json: see FormatJson) and acks it once printed. --server may list
// several nodes, comma-separated: one stream is opened to each. Exits 0 after --count
// messages or on SIGINT/SIGTERM (after sending the pending acks), 1 when the
// subscription fails (unknown topic, invalid options), 2 on bad flags.
void AddConsumeCommand(CLI::App& app, const GlobalOptions& options, Command& command);

}  // namespace ferry::cli
