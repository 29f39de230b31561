// How a message's final result reaches the application: a future (the
// Publish overload returning one) or a callback (the one taking one).
#ifndef FERRY_CLIENT_SRC_COMPLETION_H_
#define FERRY_CLIENT_SRC_COMPLETION_H_

#include <future>
#include <utility>
#include <variant>

#include "ferry/client/publisher.h"

namespace ferry::client::internal {

// Move-only; Complete() must be called exactly once. A callback costs no
// shared state and no synchronization, a future one allocation and a
// mutex/condition pair per message.
class Completion {
 public:
  // A completion for a future, and the future.
  static std::pair<Completion, std::future<PublishResult>> WithFuture() {
    Completion completion;
    std::future<PublishResult> future =
        completion.target_.emplace<std::promise<PublishResult>>().get_future();
    return {std::move(completion), std::move(future)};
  }
  static Completion WithCallback(Publisher::Callback callback) {
    Completion completion;
    completion.target_ = std::move(callback);
    return completion;
  }

  Completion() = default;
  Completion(Completion&&) noexcept = default;
  Completion& operator=(Completion&&) noexcept = default;

  void Complete(PublishResult result) {
    if (auto* promise = std::get_if<std::promise<PublishResult>>(&target_)) {
      promise->set_value(std::move(result));
    } else if (auto* callback = std::get_if<Publisher::Callback>(&target_)) {
      (*callback)(std::move(result));
    }
  }

 private:
  // monostate first: default construction allocates nothing.
  std::variant<std::monostate, std::promise<PublishResult>, Publisher::Callback> target_;
};

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_COMPLETION_H_
