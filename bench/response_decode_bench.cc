// The C++ SDK's response decoder on ferryd's own output, for callgrind: one
// DeliveryBatchWriter response of 500 x 1 KiB messages (4 partitions x 125
// consecutive offsets, so 4 receipt runs; a 10-byte key, the ferry.id header,
// cluster "main"), cut into PIECE-byte pieces (0: whole), decoded ROUNDS times.
//   valgrind --tool=callgrind --toggle-collect='*DecodeSubscribeResponse*'
//     build/bench/response_decode_bench 16384 100   (one command line)
//   Ir per message = the collected Ir / (500 * ROUNDS).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "subscribe/delivery_encoder.h"
#include "subscribe_wire.h"

namespace {

constexpr int kMessages = 500;
constexpr int kPerPartition = 125;

std::string FerrydResponse() {
  const std::string cluster = "main";
  const std::string value(1024, 'v');
  // The writer keeps pointers to the records and they view these strings:
  // all live until Finish().
  std::vector<std::string> keys, ids;
  std::vector<ferry::backend::ConsumedRecord> records(kMessages);
  for (int i = 0; i < kMessages; ++i) {
    keys.push_back("key-" + std::to_string(100'000 + i));
    char id[64];
    std::snprintf(id, sizeof id, "0192f3a4-5b6c-7d8e-9f01-%012d", i);
    ids.push_back(id);
  }
  ferry::subscribe::DeliveryBatchWriter writer;
  for (int i = 0; i < kMessages; ++i) {
    ferry::backend::ConsumedRecord& record = records[i];
    record.topic = "pc-backlog";
    record.partition = i / kPerPartition;
    record.offset = 1'234'567 + i % kPerPartition;
    record.key = keys[i];
    record.value = value;
    record.headers = {{"ferry.id", ids[i]}};
    record.timestamp_ms = 1'796'000'000'123 + i;
    const ferry::subscribe::Delivery delivery{.offset = record.offset,
                                              .attempt = 1,
                                              .generation = 3,
                                              .stream = 7,
                                              .deadline = {}};
    writer.Add(record, delivery,
               {.stream = 7,
                .partition_epoch = 42 + static_cast<uint64_t>(i / kPerPartition),
                .cluster = &cluster});
  }
  ferry::subscribe::SerializedResponse out = writer.Finish();
  return std::string(out.data(), out.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PIECE_BYTES(0: whole) ROUNDS\n", argv[0]);
    return 2;
  }
  const std::string bytes = FerrydResponse();
  const size_t piece = std::strtoul(argv[1], nullptr, 10);
  const int rounds = std::atoi(argv[2]);
  std::vector<std::string_view> pieces;
  const std::string_view all = bytes;
  for (size_t at = 0; at < all.size(); at += piece == 0 ? all.size() : piece)
    pieces.push_back(all.substr(at, piece == 0 ? all.size() : piece));
  size_t decoded_messages = 0;
  for (int r = 0; r < rounds; ++r) {
    ferry::client::internal::DecodedResponse out;
    const absl::Status status =
        ferry::client::internal::DecodeSubscribeResponse(pieces, &out);
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
    decoded_messages += out.messages.size();
  }
  std::printf("%zu bytes in %zu pieces; %zu messages decoded\n", bytes.size(),
              pieces.size(), decoded_messages);
  return 0;
}
