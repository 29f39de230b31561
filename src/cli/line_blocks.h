#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "absl/functional/function_ref.h"

namespace ferry::cli {

// Calls `on_lines` with the lines read from `fd` (without their '\n'; a last
// line without one counts too, a final '\n' does not start another), in
// input order: the views are valid only during the call. Reads up to
// `block_bytes` at a time with read(2) and hands out the complete lines of
// each read at once, so lines piped in slowly (`tail -f | ferry produce`)
// go out as they arrive rather than when a block is full; a line longer
// than the block grows it. Returns 0 at the end of the input, or the errno
// of a failed read (after handing out the complete lines read before it; a
// line cut off by the failure is not handed out).
int ForEachBlockOfLines(
    int fd, std::size_t block_bytes,
    absl::FunctionRef<void(std::span<const std::string_view> lines)> on_lines);

}  // namespace ferry::cli
