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
  if (state_ == nullptr) return;
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

void MessageBatch::Ack(std::size_t i) {
  if (state_->Settle(i)) state_->batch->stream->Ack(state_->Seq(i));
}

void MessageBatch::Nack(std::size_t i, std::chrono::milliseconds delay) {
  if (state_->Settle(i)) state_->batch->stream->Nack(state_->Seq(i), delay);
}

void MessageBatch::ExtendDeadline(std::size_t i, std::chrono::milliseconds deadline) {
  if (!state_->Settled(i)) {
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
