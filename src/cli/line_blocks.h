#pragma once

#include <cstddef>
#include <cstdio>
#include <span>
#include <string_view>

#include "absl/functional/function_ref.h"

namespace ferry::cli {

// Calls `on_lines` with the lines of `in` (without their '\n'; a last line
// without one counts too, a final '\n' does not start another), a block at a
// time, in input order: the views are valid only during the call. Reads
// `block_bytes` at a time (getline on a stream synchronized with stdio reads
// a character at a time); a line longer than the block grows it. Returns
// false if reading failed (after handing out the lines read before).
bool ForEachBlockOfLines(
    std::FILE* in, std::size_t block_bytes,
    absl::FunctionRef<void(std::span<const std::string_view> lines)> on_lines);

}  // namespace ferry::cli
