#pragma once

#include <CLI/CLI.hpp>

#include "cli/connection.h"
#include "ferry/v1/common.pb.h"

namespace ferry::cli {

// `ferry groups list [--cluster C]`: consumer groups with state and pause flag.
// `ferry groups describe GROUP [--cluster C]`: members (node, streams) and per
//     partition the owning node, committed offset, high watermark, lag and
//     in-flight messages.
// `ferry groups filter GROUP EXPR`: sets (EXPR '': clears) the group filter
//     every node applies, on top of each stream's own filter.
// `ferry seek --group G [--topic T]... --to earliest|latest|<RFC3339 time>|
//     P:OFFSET[,P:OFFSET...]`: moves a group, live or idle (P:OFFSET needs
//     exactly one --topic).
// `ferry pause --group G` / `ferry resume --group G`: stops / restarts delivery
//     on every node.
void AddGroupsCommands(CLI::App& app, const GlobalOptions& options, Command& command);

// Parses --to into a Position for `topics` (P:OFFSET lists use topics[0]).
// Returns an error message, empty on success.
std::string ParseSeekTarget(const std::string& to, const std::vector<std::string>& topics,
                            v1::Position* position);

}  // namespace ferry::cli
