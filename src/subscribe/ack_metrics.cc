#include "subscribe/ack_metrics.h"

namespace ferry::subscribe {

void AckMetrics::Add(TopicMetrics& metrics, absl::Time delivered,
                     std::optional<int64_t> publish_ms) {
  if (&metrics != metrics_) {
    Flush();
    metrics_ = &metrics;
  }
  ++acked_;
  if (delivered_run_ > 0 && delivered != delivered_) FlushProcessing();
  delivered_ = delivered;
  ++delivered_run_;
  if (!publish_ms.has_value()) return;
  if (publish_run_ > 0 && *publish_ms != publish_ms_) FlushEndToEnd();
  publish_ms_ = *publish_ms;
  ++publish_run_;
}

void AckMetrics::Flush() {
  if (metrics_ == nullptr) return;
  if (acked_ > 0) metrics_->acked->Inc(static_cast<double>(acked_));
  acked_ = 0;
  FlushProcessing();
  FlushEndToEnd();
}

void AckMetrics::FlushProcessing() {
  if (delivered_run_ == 0) return;
  metrics_->processing->Observe(absl::ToDoubleSeconds(now_ - delivered_), delivered_run_);
  delivered_run_ = 0;
}

void AckMetrics::FlushEndToEnd() {
  if (publish_run_ == 0) return;
  metrics_->end_to_end->Observe(
      absl::ToDoubleSeconds(now_ - absl::FromUnixMillis(publish_ms_)), publish_run_);
  publish_run_ = 0;
}

}  // namespace ferry::subscribe
