// MessageBatch: settlement by index on the stream that delivered the batch.
#include "message_batch.h"

#include <string>
#include <utility>

namespace ferry::client {

MessageBatch::MessageBatch() = default;
MessageBatch::MessageBatch(std::unique_ptr<internal::BatchState> state)
    : state_(std::move(state)) {}
MessageBatch::MessageBatch(MessageBatch&&) noexcept = default;

MessageBatch::~MessageBatch() {
  if (state_ == nullptr || state_->unsettled == 0) return;
  for (std::size_t i = 0; i < size(); ++i) Nack(i);
}

MessageBatch& MessageBatch::operator=(MessageBatch&& other) noexcept {
  if (this != &other) {
    MessageBatch old(std::move(*this));  // nacks what it held
    state_ = std::move(other.state_);
  }
  return *this;
}

std::span<const ReceivedView> MessageBatch::messages() const {
  if (state_ == nullptr) return {};
  return state_->Messages();
}

// A moved-from or default batch holds nothing, and an index past the end names
// no message: both are ignored, as AckHandle ignores calls on an empty handle.
bool MessageBatch::Holds(std::size_t i) const { return i < size(); }

void MessageBatch::Ack(std::size_t i) {
  if (Holds(i) && state_->Settle(i)) state_->batch->stream->Ack(state_->Seq(i));
}

void MessageBatch::Nack(std::size_t i, std::chrono::milliseconds delay) {
  if (Holds(i) && state_->Settle(i)) state_->batch->stream->Nack(state_->Seq(i), delay);
}

void MessageBatch::ExtendDeadline(std::size_t i, std::chrono::milliseconds deadline) {
  if (Holds(i) && !state_->Settled(i)) {
    state_->batch->stream->Extend(state_->Seq(i), deadline);
  }
}

void MessageBatch::AckAll() {
  if (state_ == nullptr) return;
  std::vector<uint64_t> seqs;
  seqs.reserve(size());
  for (std::size_t i = 0; i < size(); ++i) {
    if (state_->Settle(i)) seqs.push_back(state_->Seq(i));
  }
  if (!seqs.empty()) state_->batch->stream->AckAll(seqs);
}

}  // namespace ferry::client
