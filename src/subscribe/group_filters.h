#pragma once

// The filters of one consumer group on this node (docs/filters.md, "Filters
// in a subscription"): the group filter, set with Admin.SetGroupFilter and
// read from the control topic, and each attached stream's own filter
// (Open.filter). A record is wanted by a stream when the group filter and the
// stream's filter both match; the group skips (and commits past) a record no
// attached stream wants. With no stream attached only the group filter
// decides: the streams that attach later decide the rest (the dispatcher
// runs Wanted() again over what it buffered meanwhile).
//
// Threading: not thread-safe; owned by one dispatcher and used under its
// lock. Cost: Wanted() evaluates the group filter and each distinct stream
// filter at most once (streams with the same filter text share one);
// evaluation does not allocate (one header vector is reused). Every 64th
// evaluation is timed (timing each would triple a header filter's cost).
//
// Usage (the dispatcher):
//
//   GroupFilters filters(&group_metrics);
//   filters.AddStream(id, *std::move(parsed), text);
//   if (!filters.Wanted(record)) slot.SkipFetched(record.offset);
//   if (!filters.streams_agree()) deliver only where filters.WantedBy(id, record)

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/group_member.h"
#include "filter/filter.h"
#include "subscribe/partition_state.h"
#include "subscribe/subscribe_metrics.h"

namespace ferry::subscribe {

class GroupFilters {
 public:
  // `metrics` (which must outlive this object) counts records a json.*
  // condition found not JSON or lacking the field, and gets sampled
  // evaluation times.
  explicit GroupFilters(GroupMetrics* metrics);

  // Replaces the group filter (`text` empty: none).
  void SetGroupFilter(filter::Filter filter, std::string text);
  const std::string& group_filter_text() const { return group_text_; }

  void AddStream(StreamId stream, filter::Filter filter, std::string text);
  // True when no other stream had its filter: records may be wanted no more.
  bool RemoveStream(StreamId stream);

  // Whether the group wants `record`: the group filter matches and, when any
  // stream is attached, the filter of at least one of them does.
  bool Wanted(const backend::ConsumedRecord& record);
  // Whether every attached stream has the same filter, so that a wanted
  // record is wanted by every stream (and WantedBy need not be asked).
  bool streams_agree() const { return by_text_.size() <= 1; }
  // Whether `stream` wants `record`, which the group wants. Unknown streams
  // want nothing.
  bool WantedBy(StreamId stream, const backend::ConsumedRecord& record);

 private:
  struct Shared {
    filter::Filter filter;
    int streams = 0;
  };

  bool Evaluate(const filter::Filter& filter, const backend::ConsumedRecord& record);

  GroupMetrics* const metrics_;
  filter::Filter group_;
  std::string group_text_;
  bool has_group_filter_ = false;
  std::map<StreamId, std::string> stream_text_;
  // Distinct stream filters by text.
  std::map<std::string, Shared, std::less<>> by_text_;
  // Refilled for each record: evaluation allocates nothing per message.
  std::vector<std::pair<std::string_view, std::string_view>> headers_;
  uint64_t evaluations_ = 0;
};

}  // namespace ferry::subscribe
