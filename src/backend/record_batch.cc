#include "backend/record_batch.h"

#include <memory>
#include <utility>

namespace ferry::backend {
namespace {

// A record and the one-record batch viewing it.
struct SingleRecordBatch {
  Record record;
  RecordBatch batch;
};

}  // namespace

void PublishAsBatch(Cluster& cluster, Record record, PublishCallback done) {
  auto single = std::make_unique<SingleRecordBatch>();
  single->record = std::move(record);
  const Record& r = single->record;
  RecordBatch& batch = single->batch;
  batch.topic = r.topic;
  batch.keyless_group = r.keyless_group;
  batch.headers.reserve(r.headers.size());
  for (const Header& h : r.headers) batch.headers.push_back({h.key, h.value});
  batch.records.push_back({.key = r.key,
                           .value = r.value,
                           .ordering_key = r.ordering_key,
                           .first_header = 0,
                           .header_count = static_cast<uint32_t>(r.headers.size()),
                           .timestamp_ms = r.timestamp_ms,
                           .partition = r.partition});
  SingleRecordBatch* owned = single.release();
  cluster.PublishBatch(owned->batch, [owned, done = std::move(done)](
                                         std::span<const PublishOutcome> outcomes) {
    PublishOutcome outcome = outcomes[0];
    delete owned;
    done(std::move(outcome));
  });
}

Record ToRecord(const RecordBatch& batch, size_t index) {
  const RecordView& view = batch.records[index];
  Record record{.topic = batch.topic,
                .key = std::string(view.key),
                .value = std::string(view.value),
                .ordering_key = std::string(view.ordering_key),
                .timestamp_ms = view.timestamp_ms,
                .partition = view.partition,
                .keyless_group = batch.keyless_group};
  for (const HeaderView& h : batch.HeadersOf(view)) {
    record.headers.push_back({std::string(h.key), std::string(h.value)});
  }
  return record;
}

}  // namespace ferry::backend
