#pragma once

// The ferry.origin header a mirror job adds to every record it copies:
// "<cluster>/<topic>/<partition>/<offset>" of the source record. Topic names
// hold no '/', so it parses from the right (a cluster name may hold one).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backend/cluster.h"

namespace ferry::mirror {

inline constexpr char kOriginHeader[] = "ferry.origin";

struct Origin {
  std::string cluster;
  backend::TopicPartition partition;
  int64_t offset = -1;

  bool operator==(const Origin&) const = default;
};

std::string FormatOrigin(const Origin& origin);
// nullopt for anything FormatOrigin did not write.
std::optional<Origin> ParseOrigin(std::string_view header);

}  // namespace ferry::mirror
