#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry topics list [--cluster C]`: topic names per cluster.
// `ferry topics create NAME [--partitions N] [--replication-factor R]
//     [--cluster C] [--config KEY=VALUE ...]`: 0 (the default) for a count
//     means the broker's default.
// `ferry topics describe NAME [--cluster C]`: partitions with leader,
//     replicas, in-sync replicas and low/high watermarks.
// `ferry topics delete NAME [--cluster C]`.
// Without --cluster the node picks the cluster the topic's route writes.
// The chosen command is stored in `command`; `options` and the parsed
// arguments must outlive it.
void AddTopicsCommands(CLI::App& app, const GlobalOptions& options, Command& command);

}  // namespace ferry::cli
