#pragma once

// Conversions between the two publish forms of backend::Cluster, for
// backends that implement one natively and the other in its terms.

#include <cstddef>

#include "backend/cluster.h"

namespace ferry::backend {

// Publishes `record` as a batch of one through cluster.PublishBatch; the
// batch owns the record until `done` ran.
void PublishAsBatch(Cluster& cluster, Record record, PublishCallback done);

// A copy of record `index` of `batch`, for backends that keep Records.
Record ToRecord(const RecordBatch& batch, size_t index);

}  // namespace ferry::backend
