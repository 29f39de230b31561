#include "subscribe_stream.h"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "subscriber_convert.h"

namespace ferry::client::internal {
namespace {

// RpcMethod keeps a pointer to the name for the call's life.
const std::string& SubscribeMethod() {
  static const std::string* const method =
      new std::string("/ferry.v1.Subscriber/Subscribe");
  return *method;
}

int64_t AckedMessages(const ferry::v1::Acks& acks) {
  int64_t messages = acks.receipts_size();
  for (const ferry::v1::ReceiptSpan& span : acks.spans()) messages += span.count();
  return messages;
}

int64_t Settlements(const ferry::v1::SubscribeRequest& request) {
  return AckedMessages(request.ack()) + request.nack().receipts_size();
}

}  // namespace

SubscribeStream::SubscribeStream(std::size_t endpoint, std::string address,
                                 StreamConfig config, StreamListener* listener,
                                 std::shared_ptr<Counters> counters)
    : endpoint_(endpoint),
      address_(std::move(address)),
      config_(config),
      listener_(listener),
      counters_(std::move(counters)) {}

void SubscribeStream::Start(Stub* stub, const ferry::v1::SubscribeRequest& open) {
  {
    PlainLock lock(&mu_);
    current_ = open;
    writing_ = true;
  }
  stub->PrepareBidiStreamingCall(&context_, SubscribeMethod(), grpc::StubOptions(), this);
  AddHold();
  StartWrite(&current_);
  StartRead(&response_);
  StartCall();
}

void SubscribeStream::AckAll(std::span<const uint64_t> seqs) {
  bool write = false;
  {
    PlainLock lock(&mu_);
    if (!accepting_) {
      counters_->dropped_settlements += static_cast<int64_t>(seqs.size());
      return;
    }
    // At most one of these starts a write: the others find it in flight.
    for (uint64_t seq : seqs) write = AckLocked(seq) || write;
    PlanFlushLocked();
  }
  if (write) StartWrite(&current_);
}

void SubscribeStream::Nack(uint64_t seq, std::chrono::milliseconds delay) {
  bool write;
  {
    PlainLock lock(&mu_);
    if (!accepting_) {
      ++counters_->dropped_settlements;
      return;
    }
    write = SettleLocked(seq, &nacks_[delay]);
    PlanFlushLocked();
  }
  if (write) StartWrite(&current_);
}

void SubscribeStream::Extend(uint64_t seq, std::chrono::milliseconds deadline) {
  bool write;
  {
    PlainLock lock(&mu_);
    if (!accepting_) return;
    const Found found = FindLocked(seq);
    if (found.lease == nullptr || !found.lease->extending) return;
    found.lease->expires = Clock::now() + deadline;
    const Clock::time_point due = found.lease->expires - ExtensionMargin();
    next_extension_ = std::min(next_extension_, due);
    if (due < next_tick_) {
      next_tick_ = due;
      listener_->Wake();  // under mu_, as in PlanFlushLocked
    }
    write = AddPendingLocked(&extensions_[deadline], std::string(found.block->At(seq)));
    PlanFlushLocked();
  }
  if (write) StartWrite(&current_);
}

SubscribeStream::Found SubscribeStream::FindLocked(uint64_t seq) {
  ReceiptBlock* block = recent_block_;
  if (block == nullptr || seq < block->first_seq ||
      seq - block->first_seq >= block->leases.size()) {
    auto after = blocks_.upper_bound(seq);
    if (after == blocks_.begin()) return {nullptr, nullptr};
    block = std::prev(after)->second.get();
    if (seq - block->first_seq >= block->leases.size()) return {nullptr, nullptr};
    recent_block_ = block;
  }
  Lease& lease = block->leases[seq - block->first_seq];
  if (!lease.unsettled) return {nullptr, nullptr};
  return {block, &lease};
}

template <typename F>
void SubscribeStream::ForEachUnsettledLocked(F f) {
  for (auto& [first_seq, block] : blocks_) {
    if (block->unsettled == 0) continue;
    for (std::size_t i = 0; i < block->leases.size(); ++i) {
      if (block->leases[i].unsettled) f(first_seq + i, *block, block->leases[i]);
    }
  }
}

bool SubscribeStream::SettleLocked(uint64_t seq, std::vector<std::string>* list) {
  const Found found = FindLocked(seq);
  if (found.lease == nullptr) return false;
  found.Settle();
  std::string receipt(found.block->At(seq));
  if (found.lease->run_start != kNoRun) ReleaseRunLocked(found.lease->run_start, 1);
  ReleaseBlockLocked(found.block);
  return AddPendingLocked(list, std::move(receipt));
}

void SubscribeStream::ReleaseBlockLocked(ReceiptBlock* block) {
  if (--block->live > 0) return;
  if (recent_block_ == block) recent_block_ = nullptr;
  blocks_.erase(block->first_seq);
}

bool SubscribeStream::AckLocked(uint64_t seq) {
  const Found found = FindLocked(seq);
  if (found.lease == nullptr) return false;
  found.Settle();
  acks_.push_back(
      {.seq = seq, .run_start = found.lease->run_start, .block = found.block});
  return CountPendingLocked();
}

void SubscribeStream::AddRunsLocked(std::vector<DecodedRun>& runs, ReceiptBlock& block) {
  const uint64_t messages = block.leases.size();
  // The node sends runs in order, apart and within the batch; a run that is
  // not is ignored (its messages are acked by receipt).
  uint64_t end = 0;
  for (DecodedRun& run : runs) {
    const uint64_t first = run.first_message, count = run.count;
    if (first < end || count == 0 || first + count > messages) continue;
    end = first + count;
    const uint64_t start = block.first_seq + first;
    for (uint64_t i = first; i < first + count; ++i) block.leases[i].run_start = start;
    runs_.emplace(start, Run{.token = std::move(run.token),
                             .unsent = static_cast<uint32_t>(count)});
  }
}

void SubscribeStream::ReleaseRunLocked(uint64_t run_start, uint32_t n,
                                       std::string* token) {
  auto run = runs_.find(run_start);
  if (run == runs_.end()) return;
  run->second.unsent -= std::min(n, run->second.unsent);
  if (run->second.unsent > 0) {
    if (token != nullptr) *token = run->second.token;
    return;
  }
  if (token != nullptr) *token = std::move(run->second.token);
  runs_.erase(run);
}

void SubscribeStream::TakeAcksLocked(ferry::v1::Acks& request) {
  // Handler threads ack in any order; a span needs its messages together.
  // One thread acking a batch acks in order: no sort then.
  auto by_seq = [](const PendingAck& a, const PendingAck& b) { return a.seq < b.seq; };
  if (!std::is_sorted(acks_.begin(), acks_.end(), by_seq)) {
    std::sort(acks_.begin(), acks_.end(), by_seq);
  }
  for (size_t i = 0; i < acks_.size();) {
    const uint64_t start = acks_[i].run_start;
    size_t end = i + 1;
    if (start != kNoRun) {
      while (end < acks_.size() && acks_[end].run_start == start &&
             acks_[end].seq == acks_[end - 1].seq + 1) {
        ++end;
      }
    }
    const auto count = static_cast<uint32_t>(end - i);
    if (count > 1) {
      ferry::v1::ReceiptSpan& span = *request.add_spans();
      ReleaseRunLocked(start, count, span.mutable_run());
      span.set_first(static_cast<uint32_t>(acks_[i].seq - start));
      span.set_count(count);
    } else {
      request.add_receipts(std::string(acks_[i].block->At(acks_[i].seq)));
      if (start != kNoRun) ReleaseRunLocked(start, 1);
    }
    for (; i < end; ++i) ReleaseBlockLocked(acks_[i].block);
  }
  acks_.clear();
}

bool SubscribeStream::AddPendingLocked(std::vector<std::string>* list,
                                       std::string receipt) {
  list->push_back(std::move(receipt));
  return CountPendingLocked();
}

bool SubscribeStream::CountPendingLocked() {
  if (pending_++ == 0) oldest_pending_ = Clock::now();
  if (pending_ >= config_.max_ack_batch || config_.max_ack_delay.count() == 0) {
    TakePendingLocked();
    return NextWriteLocked();
  }
  return false;
}

void SubscribeStream::PlanFlushLocked() {
  if (pending_ == 0) return;
  // The background thread ticks by next_tick_ anyway: while acks flow it is
  // usually due for the previous batch's delay and finds this one then, so
  // only a batch due earlier wakes it (a futex wake and the subscriber's
  // lock per batch otherwise). Called under mu_ so that the subscriber,
  // which waits for OnStreamDone before it goes away, is still there.
  const Clock::time_point due = oldest_pending_ + config_.max_ack_delay;
  if (due < next_tick_) {
    next_tick_ = due;
    listener_->Wake();
  }
}

void SubscribeStream::TakePendingLocked() {
  if (!acks_.empty()) TakeAcksLocked(*queue_.emplace_back().mutable_ack());
  for (auto& [delay, receipts] : nacks_) {
    Request& request = queue_.emplace_back();
    ferry::v1::Nacks* nack = request.mutable_nack();
    for (std::string& receipt : receipts) nack->add_receipts(std::move(receipt));
    SetDuration(delay, nack->mutable_delay());
  }
  nacks_.clear();
  for (auto& [deadline, receipts] : extensions_) {
    Request& request = queue_.emplace_back();
    ferry::v1::Extensions* extend = request.mutable_extend();
    for (std::string& receipt : receipts) extend->add_receipts(std::move(receipt));
    SetDuration(deadline, extend->mutable_deadline());
  }
  extensions_.clear();
  pending_ = 0;
}

bool SubscribeStream::NextWriteLocked() {
  if (writing_ || broken_ || queue_.empty()) return false;
  current_ = std::move(queue_.front());
  queue_.pop_front();
  writing_ = true;
  return true;
}

Clock::time_point SubscribeStream::Tick(Clock::time_point now) {
  Clock::time_point next = Clock::time_point::max();
  bool write;
  {
    PlainLock lock(&mu_);
    if (!accepting_) return next;
    if (pending_ > 0) {
      if (now >= oldest_pending_ + config_.max_ack_delay) {
        TakePendingLocked();
      } else {
        next = oldest_pending_ + config_.max_ack_delay;
      }
    }
    const Clock::duration margin = ExtensionMargin();
    std::vector<std::string> due;
    // Leases are scanned only once the earliest extension may be due.
    if (now >= next_extension_) {
      next_extension_ = Clock::time_point::max();
      ForEachUnsettledLocked([&](uint64_t seq, const ReceiptBlock& block,
                                 Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (!lease.extending) return;
        if (now - block.delivered >= config_.max_extension) {
          // Given up: the node will redeliver it.
          lease.extending = false;
          return;
        }
        if (now >= lease.expires - margin) {
          due.emplace_back(block.At(seq));
          lease.expires = now + config_.ack_deadline;
        }
        next_extension_ = std::min(next_extension_, lease.expires - margin);
      });
    }
    next = std::min(next, next_extension_);
    if (!due.empty()) {
      ferry::v1::Extensions* extend = queue_.emplace_back().mutable_extend();
      for (std::string& receipt : due) extend->add_receipts(std::move(receipt));
      SetDuration(config_.ack_deadline, extend->mutable_deadline());
    }
    write = NextWriteLocked();
    next_tick_ = next;
  }
  if (write) StartWrite(&current_);
  return next;
}

void SubscribeStream::Close() {
  bool write = false;
  bool writes_done = false;
  {
    PlainLock lock(&mu_);
    if (half_close_requested_) return;
    half_close_requested_ = true;
    if (broken_) return;
    accepting_ = false;
    TakePendingLocked();
    runs_.clear();
    recent_block_ = nullptr;
    blocks_.clear();
    write = NextWriteLocked();
    if (!writing_) {
      writing_ = true;
      writes_done = true;
    }
  }
  if (write) StartWrite(&current_);
  if (writes_done) StartWritesDone();
}

void SubscribeStream::OnWriteDone(bool ok) {
  bool write = false;
  bool writes_done = false;
  bool release = false;
  {
    PlainLock lock(&mu_);
    writing_ = false;
    if (ok) {
      counters_->acks_sent += AckedMessages(current_.ack());
      counters_->nacks_sent += current_.nack().receipts_size();
      counters_->extensions_sent += current_.extend().receipts_size();
    } else {
      counters_->dropped_settlements += Settlements(current_);
      BreakLocked();
    }
    write = NextWriteLocked();
    if (!write && !broken_ && half_close_requested_ && !half_closed_) {
      writing_ = true;
      writes_done = true;
    }
    release = ReleaseHoldLocked();
  }
  if (write) StartWrite(&current_);
  if (writes_done) StartWritesDone();
  if (release) RemoveHold();
}

void SubscribeStream::OnWritesDoneDone(bool /*ok*/) {
  bool release;
  {
    PlainLock lock(&mu_);
    writing_ = false;
    half_closed_ = true;
    release = ReleaseHoldLocked();
  }
  if (release) RemoveHold();
}

void SubscribeStream::OnReadDone(bool ok) {
  // A response that does not decode ends the call (OnDone reports why); no
  // further read is started.
  const bool malformed = ok && !HandleResponse();
  if (malformed) context_.TryCancel();
  if (!ok || malformed) {
    bool release;
    {
      PlainLock lock(&mu_);
      BreakLocked();
      release = ReleaseHoldLocked();
    }
    if (release) RemoveHold();
    return;
  }
  StartRead(&response_);
}

bool SubscribeStream::HandleResponse() {
  // Fresh for each response: the messages' views point into its slices, and
  // it lives as long as any of them is used.
  auto batch = std::make_shared<ReceivedBatch>();
  pieces_.clear();
  // An empty response (all fields default) has no slices to dump.
  if (response_.Length() > 0 && !response_.Dump(&batch->slices).ok()) {
    decode_error_ = "could not read a SubscribeResponse";
    return false;
  }
  response_.Clear();
  for (const grpc::Slice& slice : batch->slices) {
    pieces_.emplace_back(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  DecodedResponse& decoded = batch->decoded;
  absl::Status status = DecodeSubscribeResponse(pieces_, &decoded);
  if (!status.ok()) {
    decode_error_ = std::string(status.message());
    return false;
  }
  switch (decoded.kind) {
    case DecodedResponse::Kind::kOpened:
      if (!opened_.exchange(true)) ++counters_->open_streams;
      break;
    case DecodedResponse::Kind::kMessages:
      HandleMessages(std::move(batch));
      break;
    case DecodedResponse::Kind::kReceiptResults:
      HandleReceiptResults(decoded);
      break;
    case DecodedResponse::Kind::kNotSet:
      break;
  }
  return true;
}

void SubscribeStream::HandleMessages(std::shared_ptr<ReceivedBatch> batch) {
  DecodedResponse& decoded = batch->decoded;
  const uint64_t count = decoded.messages.size();
  counters_->received += static_cast<int64_t>(count);
  if (count == 0) return;
  bool wake;
  {
    PlainLock lock(&mu_);
    // Messages that arrive while closing are not handed out: the node
    // redelivers them once the stream ends.
    if (!accepting_) return;
    const Clock::time_point now = Clock::now();
    const uint64_t first_seq = next_seq_;
    next_seq_ += count;
    auto block = std::make_unique<ReceiptBlock>(ReceiptBlock{
        .receipts = std::move(decoded.receipts),
        .first_seq = first_seq,
        .delivered = now,
        .leases = std::vector<Lease>(count, Lease{.expires = now + config_.ack_deadline}),
        .live = static_cast<uint32_t>(count),
        .unsettled = static_cast<uint32_t>(count)});
    AddRunsLocked(decoded.runs, *block);
    // Sequence numbers only grow: the new block goes at the map's end.
    blocks_.emplace_hint(blocks_.end(), first_seq, std::move(block));
    batch->first_seq = first_seq;
    const Clock::time_point due = now + config_.ack_deadline - ExtensionMargin();
    next_extension_ = std::min(next_extension_, due);
    // The background thread wakes for Tick() by itself unless their
    // extensions are due before it planned to (a wake-up per batch would
    // cost a scan of every lease per batch).
    wake = due < next_tick_;
    if (wake) next_tick_ = due;
  }
  if (wake) listener_->Wake();
  batch->stream = shared_from_this();
  listener_->OnMessages(std::move(batch));
}

void SubscribeStream::HandleReceiptResults(const DecodedResponse& response) {
  std::vector<ReceiptFailure> failures;
  absl::flat_hash_set<std::string_view> failed;
  for (const DecodedResult& result : response.results) {
    if (result.code == 0) continue;
    failed.insert(result.receipt);
    failures.push_back(ReceiptFailure{
        .code = result.code, .error = result.message, .endpoint = address_});
  }
  if (!failed.empty()) {
    // No point extending those further. Rare (rebalances, seeks), so a
    // scan rather than an index by receipt.
    PlainLock lock(&mu_);
    ForEachUnsettledLocked([&](uint64_t seq, const ReceiptBlock& block, Lease& lease) {
      if (failed.contains(block.At(seq))) lease.extending = false;
    });
  }
  counters_->receipt_failures += static_cast<int64_t>(failures.size());
  if (!failures.empty()) listener_->OnReceiptFailures(this, std::move(failures));
}

void SubscribeStream::OnDone(const grpc::Status& status) {
  {
    PlainLock lock(&mu_);
    BreakLocked();
  }
  if (opened_.load()) --counters_->open_streams;
  // Last: the subscriber may release this stream as soon as it knows.
  listener_->OnStreamDone(this,
                          decode_error_.empty()
                              ? status
                              : grpc::Status(grpc::StatusCode::INTERNAL, decode_error_));
}

void SubscribeStream::BreakLocked() {
  if (broken_) return;
  broken_ = true;
  accepting_ = false;
  int64_t dropped = static_cast<int64_t>(acks_.size());
  for (const auto& [delay, receipts] : nacks_) dropped += receipts.size();
  for (const Request& request : queue_) dropped += Settlements(request);
  counters_->dropped_settlements += dropped;
  acks_.clear();
  nacks_.clear();
  extensions_.clear();
  pending_ = 0;
  queue_.clear();
  runs_.clear();
  recent_block_ = nullptr;
  blocks_.clear();
}

bool SubscribeStream::ReleaseHoldLocked() {
  if (hold_released_ || writing_ || !(broken_ || half_closed_)) return false;
  hold_released_ = true;
  return true;
}

}  // namespace ferry::client::internal
