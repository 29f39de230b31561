#include "mirror/target_position.h"

#include "mirror/offset_translator.h"

namespace ferry::mirror {

FirstCopyAtOrAfter::FirstCopyAtOrAfter(std::string source_cluster,
                                       backend::TopicPartition partition,
                                       int64_t group_offset, int64_t from)
    : source_cluster_(std::move(source_cluster)),
      partition_(std::move(partition)),
      group_offset_(group_offset),
      searched_to_(from) {}

bool FirstCopyAtOrAfter::Add(const backend::ConsumedRecord& record) {
  if (found_) return true;
  const std::optional<int64_t> origin =
      CopiedFrom(record.headers, source_cluster_, partition_);
  if (origin.has_value() && *origin >= group_offset_) {
    found_ = record.offset;
    searched_to_ = record.offset;
  } else {
    searched_to_ = record.offset + 1;
  }
  return found_.has_value();
}

int64_t ForwardScanFrom(int64_t earlier_group_offset, int64_t earlier_searched_to,
                        int64_t group_offset) {
  if (earlier_group_offset < 0 || earlier_group_offset > group_offset) return 0;
  return earlier_searched_to;
}

}  // namespace ferry::mirror
