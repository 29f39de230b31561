#pragma once

// The node's series about consumers being closed (backend/member_leave.h):
// ferry_consumers_closing, and ferry_consumers_abandoned_total{kind,cluster},
// the one count of consumers abandoned while closing.

#include <string>
#include <vector>

#include "metrics/registry.h"

namespace ferry::server {

// Registers them for `clusters` (names), every kind from the start (0).
void RegisterConsumerMetrics(metrics::Registry& registry,
                             const std::vector<std::string>& clusters);

}  // namespace ferry::server
