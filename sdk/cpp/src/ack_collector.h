// Collects the acks a handler thread makes while it runs a run of one
// stream's messages (or that AckAll makes for a pulled batch), and settles
// them under one stream lock when the run ends, instead of taking that lock
// (which every handler thread wants) once per message.
#ifndef FERRY_CLIENT_SRC_ACK_COLLECTOR_H_
#define FERRY_CLIENT_SRC_ACK_COLLECTOR_H_

#include <cstdint>
#include <vector>

namespace ferry::client::internal {

class SubscribeStream;

// Lives on the stack of the thread running the run; while it does,
// For(stream) finds it on that thread only. Acks from other threads, of
// other streams, or after the run go to the stream directly.
class AckCollector {
 public:
  explicit AckCollector(SubscribeStream* stream);
  // Sends the collected acks to the stream.
  ~AckCollector();
  AckCollector(const AckCollector&) = delete;
  AckCollector& operator=(const AckCollector&) = delete;

  // This thread's collector for `stream`, or null.
  static AckCollector* For(const SubscribeStream* stream);

  void Add(uint64_t seq) { seqs_.push_back(seq); }

 private:
  SubscribeStream* const stream_;
  AckCollector* const previous_;
  std::vector<uint64_t> seqs_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_ACK_COLLECTOR_H_
