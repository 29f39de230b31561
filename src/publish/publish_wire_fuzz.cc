// libFuzzer target (scripts/fuzz): publish requests come from clients, so any
// bytes, in any cut into pieces, must decode to INVALID_ARGUMENT or to views
// that lie inside the input or its spilled copies, decode the same whatever
// the cut, and answer with a response of exactly its computed size.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "common/fuzz_pieces.h"
#include "publish/publish_wire.h"

namespace {

using ferry::publish::PublishRequestView;

bool Inside(std::string_view view, std::string_view input, const PublishRequestView& r) {
  if (view.empty()) return true;
  if (view.data() >= input.data() &&
      view.data() + view.size() <= input.data() + input.size()) {
    return true;
  }
  for (const std::string& copy : r.spilled) {
    if (view.data() >= copy.data() &&
        view.data() + view.size() <= copy.data() + copy.size()) {
      return true;
    }
  }
  return false;
}

bool Same(const PublishRequestView& a, const PublishRequestView& b) {
  if (a.request_id != b.request_id || a.topic != b.topic ||
      a.compact_results != b.compact_results || a.messages.size() != b.messages.size() ||
      a.headers.size() != b.headers.size()) {
    return false;
  }
  for (size_t i = 0; i < a.messages.size(); ++i) {
    const auto& x = a.messages[i];
    const auto& y = b.messages[i];
    if (x.key != y.key || x.value != y.value || x.ordering_key != y.ordering_key ||
        x.id != y.id || x.first_header != y.first_header ||
        x.header_count != y.header_count || x.has_timestamp != y.has_timestamp ||
        x.timestamp_ms != y.timestamp_ms || x.bytes != y.bytes) {
      return false;
    }
  }
  for (size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].key != b.headers[i].key ||
        a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ferry::fuzz::Pieces pieces = ferry::fuzz::CutInput(data, size);
  const std::string_view input = pieces.whole;

  PublishRequestView whole;
  const absl::Status decoded = ferry::publish::DecodePublishRequest({&input, 1}, &whole);
  PublishRequestView cut;
  const absl::Status decoded_cut = ferry::publish::DecodePublishRequest(pieces.cut, &cut);
  if (decoded.ok() != decoded_cut.ok()) std::abort();
  if (!decoded.ok()) {
    if (decoded.code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if (!Same(whole, cut) || !whole.spilled.empty()) std::abort();
  for (const auto& m : cut.messages) {
    if (!Inside(m.key, input, cut) || !Inside(m.value, input, cut) ||
        !Inside(m.ordering_key, input, cut) || !Inside(m.id, input, cut) ||
        static_cast<size_t>(m.first_header) + m.header_count > cut.headers.size()) {
      std::abort();
    }
  }

  ferry::publish::BatchResults answer;
  answer.cluster = "main";
  for (size_t i = 0; i < cut.messages.size(); ++i) {
    ferry::publish::MessageResult r;
    r.partition = static_cast<int32_t>(i) - 1;
    r.offset = static_cast<int64_t>(cut.messages[i].bytes) - 2;
    r.timestamp_ms = cut.messages[i].timestamp_ms;
    if (i % 3 == 2) r.status = absl::UnavailableError("down");
    answer.results.push_back(r);
  }
  const ferry::publish::ResponsePlan plan =
      ferry::publish::PlanPublishResponse(cut, answer);
  auto response = std::make_unique<char[]>(plan.size);
  if (ferry::publish::WritePublishResponse(cut, answer, plan, response.get()) !=
      response.get() + plan.size) {
    std::abort();
  }
  return 0;
}
