#include "subscribe/subscribe_metrics.h"

namespace ferry::subscribe {

GroupMetrics::GroupMetrics(metrics::Registry* registry, std::string group)
    : registry_(registry), group_(std::move(group)) {}

TopicMetrics& GroupMetrics::For(const std::string& topic) {
  auto it = topics_.find(topic);
  if (it != topics_.end()) return it->second;
  metrics::Labels labels = {{"group", group_}, {"topic", topic}};
  auto counter = [&](std::string_view name, std::string_view help) {
    return &registry_->GetCounter(name, help, labels);
  };
  TopicMetrics t{
      .delivered = counter("ferry_subscribe_delivered_total",
                           "Messages handed to subscriber streams (first deliveries)."),
      .redelivered = counter("ferry_subscribe_redelivered_total",
                             "Messages handed out again after a nack, an expired "
                             "deadline or a lost stream."),
      .acked = counter("ferry_subscribe_acked_total", "Messages acked by subscribers."),
      .nacked =
          counter("ferry_subscribe_nacked_total", "Messages nacked by subscribers."),
      .expired = counter("ferry_subscribe_deadline_expired_total",
                         "Deliveries whose ack deadline passed."),
      .dead_lettered = counter("ferry_subscribe_dead_lettered_total",
                               "Messages written to the dead-letter topic after "
                               "max_delivery_attempts."),
      .dead_letter_failures =
          counter("ferry_subscribe_dead_letter_failures_total",
                  "Failed writes to the dead-letter topic (each is retried with "
                  "backoff; the message stays unacked meanwhile)."),
      .filtered = counter("ferry_subscribe_filtered_total",
                          "Messages skipped (and committed past) because no stream's "
                          "filter or the group filter matched them."),
      .processing = &registry_->GetHistogram(
          "ferry_subscribe_processing_seconds",
          "Delivery to ack, per message (client processing time).",
          metrics::LatencyBuckets(), labels),
      .end_to_end =
          &registry_->GetHistogram("ferry_subscribe_end_to_end_seconds",
                                   "Record timestamp (publish time) to ack, per message.",
                                   metrics::LatencyBuckets(), labels),
  };
  return topics_.emplace(topic, t).first->second;
}

metrics::Gauge& GroupMetrics::Lag(const std::string& cluster,
                                  const backend::TopicPartition& tp) {
  metrics::Gauge*& gauge = lag_[{cluster, tp}];
  if (gauge != nullptr) return *gauge;
  gauge = &registry_->GetGauge(
      "ferry_subscribe_lag_messages",
      "Messages of a partition owned by this node not yet committed by the group "
      "(high watermark - commit offset); 0 once the partition moved elsewhere.",
      {{"group", group_},
       {"cluster", cluster},
       {"topic", tp.topic},
       {"partition", std::to_string(tp.partition)}});
  return *gauge;
}

metrics::Counter& GroupMetrics::FilterErrors() {
  if (filter_errors_ == nullptr) {
    filter_errors_ = &registry_->GetCounter(
        "ferry_subscribe_filter_errors_total",
        "Filter evaluations whose json.* condition met a value that is not JSON or "
        "lacks the field (the condition is false; not an error to the client).",
        {{"group", group_}});
  }
  return *filter_errors_;
}

metrics::Histogram& GroupMetrics::FilterEvalSeconds() {
  if (filter_eval_seconds_ == nullptr) {
    filter_eval_seconds_ = &registry_->GetHistogram(
        "ferry_subscribe_filter_eval_seconds",
        "Time to evaluate one filter on one message (every 64th evaluation is timed).",
        {1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 1e-4, 1e-3}, {{"group", group_}});
  }
  return *filter_eval_seconds_;
}

}  // namespace ferry::subscribe
