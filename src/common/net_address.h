#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry {

// A "host:port" pair as written in configuration and on the command line.
// IPv6 hosts are bracketed: "[::1]:7400".
struct NetAddress {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const;
};

// Parses "host:port" with a port in 1..65535. Errors are INVALID_ARGUMENT and
// quote the input, e.g. `port "99999" of "localhost:99999" is not in 1..65535`.
absl::StatusOr<NetAddress> ParseNetAddress(std::string_view text);

// Parses a Kafka-style bootstrap list: "host:port[,host:port...]".
absl::StatusOr<std::vector<NetAddress>> ParseAddressList(std::string_view text);

}  // namespace ferry
