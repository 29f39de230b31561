#include "common/net_address.h"

#include <fmt/format.h>

#include "absl/status/status.h"
#include "common/strings.h"

namespace ferry {

std::string NetAddress::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

absl::StatusOr<NetAddress> ParseNetAddress(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        fmt::format("\"{}\" is not host:port (missing port)", text));
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.starts_with('[')) {
    if (!host.ends_with(']')) {
      return absl::InvalidArgumentError(
          fmt::format("\"{}\" has an unclosed '[' in its host", text));
    }
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("\"{}\" is not host:port (empty host)", text));
  }
  uint16_t port = 0;
  if (!ParseInt(port_text, port) || port == 0) {
    return absl::InvalidArgumentError(
        fmt::format("port \"{}\" of \"{}\" is not in 1..65535", port_text, text));
  }
  return NetAddress{std::string(host), port};
}

absl::StatusOr<std::vector<NetAddress>> ParseAddressList(std::string_view text) {
  std::vector<NetAddress> out;
  for (std::string_view part : Split(text, ',')) {
    absl::StatusOr<NetAddress> address = ParseNetAddress(Trim(part));
    if (!address.ok()) return address.status();
    out.push_back(*std::move(address));
  }
  return out;
}

}  // namespace ferry
