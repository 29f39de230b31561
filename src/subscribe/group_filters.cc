#include "subscribe/group_filters.h"

#include <chrono>

namespace ferry::subscribe {
namespace {

// Timing one evaluation costs two steady_clock reads (22-27 ns each, measured
// on the bench VM), twice a header filter's ~25 ns (bench/RESULTS.md): sample.
constexpr uint64_t kTimeEveryNth = 64;

}  // namespace

GroupFilters::GroupFilters(GroupMetrics* metrics) : metrics_(metrics) {}

void GroupFilters::SetGroupFilter(filter::Filter filter, std::string text) {
  group_ = std::move(filter);
  group_text_ = std::move(text);
  has_group_filter_ = !group_text_.empty();
}

void GroupFilters::AddStream(StreamId stream, filter::Filter filter, std::string text) {
  RemoveStream(stream);
  auto [it, added] = by_text_.try_emplace(text, Shared{.filter = std::move(filter)});
  ++it->second.streams;
  stream_text_[stream] = std::move(text);
}

bool GroupFilters::RemoveStream(StreamId stream) {
  auto it = stream_text_.find(stream);
  if (it == stream_text_.end()) return false;
  auto shared = by_text_.find(it->second);
  stream_text_.erase(it);
  if (--shared->second.streams > 0) return false;
  by_text_.erase(shared);
  return true;
}

bool GroupFilters::Wanted(const backend::ConsumedRecord& record) {
  if (has_group_filter_ && !Evaluate(group_, record)) return false;
  if (by_text_.empty() || by_text_.contains(std::string_view())) return true;
  for (const auto& [text, shared] : by_text_) {
    if (Evaluate(shared.filter, record)) return true;
  }
  return false;
}

bool GroupFilters::WantedBy(StreamId stream, const backend::ConsumedRecord& record) {
  auto it = stream_text_.find(stream);
  if (it == stream_text_.end()) return false;
  return it->second.empty() || Evaluate(by_text_.find(it->second)->second.filter, record);
}

bool GroupFilters::Evaluate(const filter::Filter& filter,
                            const backend::ConsumedRecord& record) {
  headers_.clear();
  for (const backend::HeaderView& header : record.headers) {
    headers_.emplace_back(header.key, header.value);
  }
  const filter::MessageView view{.topic = record.topic,
                                 .partition = record.partition,
                                 .timestamp_ms = record.timestamp_ms,
                                 .key = record.key,
                                 .value = record.value,
                                 .headers = headers_};
  filter::EvalStats stats;
  bool matched;
  if (++evaluations_ % kTimeEveryNth == 0) {
    const auto start = std::chrono::steady_clock::now();
    matched = filter.Matches(view, &stats);
    metrics_->FilterEvalSeconds().Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  } else {
    matched = filter.Matches(view, &stats);
  }
  if (const uint64_t errors = stats.values_not_json + stats.json_fields_missing) {
    metrics_->FilterErrors().Inc(static_cast<double>(errors));
  }
  return matched;
}

}  // namespace ferry::subscribe
