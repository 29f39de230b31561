#include "server/consumer_metrics.h"

#include "backend/member_leave.h"

namespace ferry::server {

void RegisterConsumerMetrics(metrics::Registry& registry,
                             const std::vector<std::string>& clusters) {
  registry.AddGaugeCallback(
      "ferry_consumers_closing",
      "Consumers (group members, mirror jobs', the control topic's and partition "
      "scans' readers) being closed now, those abandoned past their bound included.",
      {}, [] { return static_cast<double>(backend::MembersLeaving()); });
  for (const std::string& cluster : clusters) {
    for (const backend::ConsumerKind kind : backend::kConsumerKinds) {
      registry.AddCounterCallback(
          "ferry_consumers_abandoned_total",
          "Consumers abandoned while closing (still closing past their bound, left to "
          "finish or leak on their own) since ferryd started, by kind (group, mirror, "
          "control, scan) and cluster. Each is also logged as an error naming it.",
          {{"kind", std::string(backend::KindName(kind))}, {"cluster", cluster}},
          [kind, cluster] {
            return static_cast<double>(backend::ConsumersAbandoned(kind, cluster));
          });
    }
  }
}

}  // namespace ferry::server
