#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"

namespace ferry::cli {

// `ferry mirror start NAME --from A --to B --topic T [--topic T2 ...]`: copy
//     topics from cluster A to B, partition for partition, on every node.
// `ferry mirror stop NAME`, `ferry mirror list`.
// `ferry mirror status NAME`: per partition committed source offset,
//     watermarks and lag.
// `ferry mirror translate NAME --group G`: per partition G's committed
//     source offset -> the target offset it starts from (Admin
//     TranslateOffsets).
// The chosen command is stored in `command`; `options` and the parsed
// arguments must outlive it.
void AddMirrorCommands(CLI::App& app, const GlobalOptions& options, Command& command);

}  // namespace ferry::cli
