#include "ack_collector.h"

#include "subscribe_stream.h"

namespace ferry::client::internal {
namespace {

thread_local AckCollector* current_collector = nullptr;
thread_local const SubscribeStream* current_stream = nullptr;

}  // namespace

AckCollector::AckCollector(SubscribeStream* stream)
    : stream_(stream), previous_(current_collector) {
  current_collector = this;
  current_stream = stream;
}

AckCollector::~AckCollector() {
  current_collector = previous_;
  current_stream = previous_ != nullptr ? previous_->stream_ : nullptr;
  if (!seqs_.empty()) stream_->AckAll(seqs_);
}

AckCollector* AckCollector::For(const SubscribeStream* stream) {
  return current_stream == stream ? current_collector : nullptr;
}

}  // namespace ferry::client::internal
