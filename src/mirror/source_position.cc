#include "mirror/source_position.h"

#include <algorithm>

#include "mirror/offset_translator.h"

namespace ferry::mirror {

SourcePosition::SourcePosition(std::string source_cluster,
                               backend::TopicPartition partition,
                               int64_t target_committed,
                               std::optional<int64_t> read_before)
    : source_cluster_(std::move(source_cluster)),
      partition_(std::move(partition)),
      target_committed_(target_committed),
      last_source_read_(read_before) {}

bool SourcePosition::Add(const backend::ConsumedRecord& record) {
  if (record.offset < target_committed_) {
    if (std::optional<int64_t> origin =
            CopiedFrom(record.headers, source_cluster_, partition_)) {
      last_source_read_ = std::max(last_source_read_.value_or(-1), *origin);
    }
  }
  complete_ |= record.offset + 1 >= target_committed_;
  return complete_;
}

int64_t SourcePosition::ResumeOnSource(int64_t source_committed) const {
  const int64_t past_read = last_source_read_ ? *last_source_read_ + 1 : -1;
  return std::max(source_committed, past_read);
}

ReturnScanStart PlanReturnScan(std::optional<int64_t> cutover, int64_t target_committed,
                               int64_t source_committed,
                               const std::optional<EarlierPass>& earlier) {
  ReturnScanStart start{.target = std::max<int64_t>(cutover.value_or(0), 0),
                        .source = std::max<int64_t>(source_committed, 0)};
  if (!earlier || earlier->source_committed != source_committed ||
      earlier->target_committed > target_committed ||
      earlier->target_committed < start.target) {
    return start;
  }
  start.target = earlier->target_committed;
  start.read_before = earlier->last_source_read;
  start.source = std::max(start.source, earlier->first_unread);
  return start;
}

FirstUnreadOnSource::FirstUnreadOnSource(std::string target_cluster,
                                         backend::TopicPartition partition,
                                         int64_t source_committed,
                                         std::optional<int64_t> last_source_read,
                                         int64_t target_committed, int64_t end)
    : target_cluster_(std::move(target_cluster)),
      partition_(std::move(partition)),
      source_committed_(source_committed),
      last_source_read_(last_source_read.value_or(-1)),
      target_committed_(target_committed),
      end_(end),
      complete_(std::max<int64_t>(source_committed, 0) >= end),
      resume_(end) {}

bool FirstUnreadOnSource::Add(const backend::ConsumedRecord& record) {
  if (complete_) return true;
  if (record.offset >= source_committed_) {
    const std::optional<int64_t> copy_of =
        CopiedFrom(record.headers, target_cluster_, partition_);
    const bool read =
        copy_of ? *copy_of < target_committed_ : record.offset <= last_source_read_;
    if (!read) {
      resume_ = record.offset;
      complete_ = true;
    }
  }
  complete_ |= record.offset + 1 >= end_;
  return complete_;
}

}  // namespace ferry::mirror
