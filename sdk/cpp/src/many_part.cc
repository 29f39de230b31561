#include "many_part.h"

#include <algorithm>
#include <utility>

namespace ferry::client::internal {
namespace {

// The index of `text` in `list`, appended if absent. Lists hold a handful
// of distinct clusters and error texts, so a scan is cheapest; the last
// entry, the likeliest, first.
uint32_t IndexOf(std::vector<std::string>& list, std::string_view text) {
  for (std::size_t i = list.size(); i-- > 0;) {
    if (list[i] == text) return static_cast<uint32_t>(i);
  }
  list.emplace_back(text);
  return static_cast<uint32_t>(list.size() - 1);
}

}  // namespace

void ManyCall::Release() {
  if (holds_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  PublishManyResult result;
  {
    absl::MutexLock lock(&mu_);
    result = std::move(result_);
  }
  result.failed = static_cast<std::size_t>(
      std::count_if(result.messages.begin(), result.messages.end(),
                    [](const MessageOutcome& outcome) { return !outcome.ok(); }));
  done_.Complete(std::move(result));
}

ManyCall::Writer::Writer(ManyCall& call) : call_(call) { call_.mu_.Lock(); }
ManyCall::Writer::~Writer() { call_.mu_.Unlock(); }

void RecordSuccess(PublishManyResult* result, std::size_t index, std::string_view cluster,
                   int32_t partition, int64_t offset, bool direct) {
  result->messages[index] = MessageOutcome{.direct = direct,
                                           .cluster = IndexOf(result->clusters, cluster),
                                           .partition = partition,
                                           .offset = offset};
}

void RecordFailure(PublishManyResult* result, std::size_t index, int code, bool retryable,
                   std::string_view error, bool direct, std::string_view endpoint) {
  result->messages[index] =
      MessageOutcome{.code = code,
                     .retryable = retryable,
                     .direct = direct,
                     .error = IndexOf(result->errors, error),
                     .endpoint = IndexOf(result->endpoints, endpoint)};
}

// Not analysed: a Writer holds call_.mu_ for its life, which clang cannot see
// from a member function.
std::string_view ManyCall::Writer::LastError(std::size_t index) const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  const PublishManyResult& result = call_.result_;
  const MessageOutcome& outcome = result.messages[index];
  if (outcome.ok()) return {};
  return result.errors[outcome.error];
}

}  // namespace ferry::client::internal
