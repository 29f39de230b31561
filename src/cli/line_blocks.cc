#include "cli/line_blocks.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace ferry::cli {

int ForEachBlockOfLines(
    int fd, std::size_t block_bytes,
    absl::FunctionRef<void(std::span<const std::string_view> lines)> on_lines) {
  std::vector<char> block(block_bytes > 0 ? block_bytes : 1);
  std::vector<std::string_view> lines;
  // block[0, filled): read and not yet handed out (the start of a line).
  std::size_t filled = 0;
  for (;;) {
    if (filled == block.size()) block.resize(block.size() * 2);
    // What is kept from the last read holds no '\n': search only the new bytes.
    const std::size_t search_from = filled;
    const ssize_t got = ::read(fd, block.data() + filled, block.size() - filled);
    const int error = got < 0 ? errno : 0;
    if (error == EINTR) continue;
    const bool end = got <= 0;
    if (!end) filled += static_cast<std::size_t>(got);
    const std::string_view data(block.data(), filled);
    std::size_t begin = 0;
    lines.clear();
    for (std::size_t newline = data.find('\n', search_from);
         newline != std::string_view::npos; newline = data.find('\n', begin)) {
      lines.push_back(data.substr(begin, newline - begin));
      begin = newline + 1;
    }
    if (got == 0 && begin < filled) {
      lines.push_back(data.substr(begin));
      begin = filled;
    }
    if (!lines.empty()) on_lines(lines);
    if (end) return error;
    std::memmove(block.data(), block.data() + begin, filled - begin);
    filled -= begin;
  }
}

}  // namespace ferry::cli
