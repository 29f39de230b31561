#include "convert.h"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <utility>

#include "retry.h"

namespace ferry::client::internal {

IdGenerator::IdGenerator() {
  std::random_device device;
  std::array<uint32_t, 8> entropy;
  for (uint32_t& word : entropy) word = device();
  std::seed_seq seed(entropy.begin(), entropy.end());
  absl::MutexLock lock(&mu_);
  rng_.seed(seed);
}

std::string IdGenerator::Next() {
  uint64_t high, low;
  {
    absl::MutexLock lock(&mu_);
    high = rng_();
    low = rng_();
  }
  // By hand: fmt's formatting showed in per-message profiles.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int i = 15; i >= 0; --i) {
    id[i] = kHex[high & 0xf];
    id[16 + i] = kHex[low & 0xf];
    high >>= 4;
    low >>= 4;
  }
  return id;
}

std::size_t PayloadBytes(const Message& message) {
  std::size_t bytes =
      message.key.size() + message.ordering_key.size() + message.value.size();
  for (const Header& header : message.headers) {
    bytes += header.key.size() + header.value.size();
  }
  return bytes;
}

void ToProto(Message message, std::string id, ferry::v1::OutgoingMessage* out) {
  out->set_key(std::move(message.key));
  out->set_value(std::move(message.value));
  out->mutable_headers()->Reserve(static_cast<int>(message.headers.size()));
  for (Header& header : message.headers) {
    ferry::v1::Header* h = out->add_headers();
    h->set_key(std::move(header.key));
    h->set_value(std::move(header.value));
  }
  out->set_ordering_key(std::move(message.ordering_key));
  out->set_id(std::move(id));
  if (message.timestamp.has_value()) {
    auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           message.timestamp->time_since_epoch())
                           .count();
    // Floor division: Timestamp.nanos must be in [0, 1e9) also before 1970.
    int64_t seconds = since_epoch / 1'000'000'000;
    int64_t nanos = since_epoch % 1'000'000'000;
    if (nanos < 0) {
      seconds -= 1;
      nanos += 1'000'000'000;
    }
    out->mutable_timestamp()->set_seconds(seconds);
    out->mutable_timestamp()->set_nanos(static_cast<int32_t>(nanos));
  }
}

PublishResult FromProto(ferry::v1::PublishResult&& result, const std::string& id) {
  PublishResult out;
  out.code = result.status().code();
  if (result.has_status())
    out.error = std::move(*result.mutable_status()->mutable_message());
  out.retryable = Retryable(out.code, result.status().retryable());
  if (out.code != 0 && out.error.empty()) {
    out.error = fmt::format("node answered code {} without a reason", out.code);
  }
  if (out.code == 0) {
    out.cluster = std::move(*result.mutable_cluster());
    out.partition = result.partition();
    out.offset = result.offset();
  }
  out.id = result.id().empty() ? id : std::move(*result.mutable_id());
  return out;
}

PublishResult Failure(int code, std::string error, std::string id) {
  PublishResult out;
  out.code = code;
  out.error = std::move(error);
  out.retryable = Retryable(code);
  out.id = std::move(id);
  return out;
}

}  // namespace ferry::client::internal
