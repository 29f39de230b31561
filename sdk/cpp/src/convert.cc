#include "convert.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>

#include "retry.h"

namespace ferry::client::internal {

namespace {

// The calling thread's engine.
std::mt19937_64& ThreadEngine() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::array<uint32_t, 8> entropy;
    for (uint32_t& word : entropy) word = device();
    std::seed_seq seed(entropy.begin(), entropy.end());
    return std::mt19937_64(seed);
  }();
  return engine;
}

constexpr std::size_t kIdDigits = 32;

// The two lowercase hex digits of each byte value.
constexpr std::array<std::array<char, 2>, 256> kHexPairs = [] {
  constexpr char kHex[] = "0123456789abcdef";
  std::array<std::array<char, 2>, 256> pairs{};
  for (std::size_t i = 0; i < 256; ++i) pairs[i] = {kHex[i >> 4], kHex[i & 0xf]};
  return pairs;
}();

// 32 lowercase hex digits of high then low into `out`. By hand, a byte at a
// time: fmt's formatting, and then a digit at a time, showed in per-message
// profiles.
void WriteHexId(uint64_t high, uint64_t low, char* out) {
  for (int i = 7; i >= 0; --i) {
    std::memcpy(out + 2 * i, kHexPairs[high & 0xff].data(), 2);
    std::memcpy(out + 16 + 2 * i, kHexPairs[low & 0xff].data(), 2);
    high >>= 8;
    low >>= 8;
  }
}

}  // namespace

std::string IdGenerator::Next() {
  std::mt19937_64& engine = ThreadEngine();
  const uint64_t high = engine();
  const uint64_t low = engine();
  std::string id(kIdDigits, '0');
  WriteHexId(high, low, id.data());
  return id;
}

PublishManyResult IdGenerator::NewResult(std::span<const MessageView> messages) {
  PublishManyResult result;
  result.messages.resize(messages.size());
  std::size_t bytes = 0;
  for (const MessageView& message : messages) {
    bytes += message.id.empty() ? kIdDigits : message.id.size();
  }
  result.ids.resize(bytes);
  result.id_ends.reserve(messages.size());
  char* out = result.ids.data();
  std::mt19937_64& engine = ThreadEngine();
  for (const MessageView& message : messages) {
    if (message.id.empty()) {
      const uint64_t high = engine();
      WriteHexId(high, engine(), out);
      out += kIdDigits;
    } else {
      out = std::copy(message.id.begin(), message.id.end(), out);
    }
    result.id_ends.push_back(static_cast<uint32_t>(out - result.ids.data()));
  }
  return result;
}

std::size_t PayloadBytes(const MessageView& message) {
  std::size_t bytes =
      message.key.size() + message.ordering_key.size() + message.value.size();
  for (const Header& header : message.headers) {
    bytes += header.key.size() + header.value.size();
  }
  return bytes;
}

void FromWire(const ResultView& result, std::string* id, PublishResult* written) {
  PublishResult& out = *written;
  out.code = result.code;
  out.error = result.error;
  out.retryable = Retryable(out.code, result.retryable);
  if (out.code != 0 && out.error.empty()) {
    out.error = fmt::format("node answered code {} without a reason", out.code);
  }
  if (out.code == 0) {
    out.cluster = result.cluster;
    out.partition = result.partition;
    out.offset = result.offset;
  }
  // The echo, without comparing it to *id: that string was allocated at
  // Publish and is out of the cache by now.
  if (!result.id.empty()) {
    out.id = result.id;
  } else if (out.code == 0) {
    out.id = std::move(*id);
  } else {
    out.id = *id;
  }
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
