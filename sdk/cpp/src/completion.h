// How a final result reaches the application: a future (the Publish /
// PublishMany overloads returning one) or a callback (the ones taking one).
#ifndef FERRY_CLIENT_SRC_COMPLETION_H_
#define FERRY_CLIENT_SRC_COMPLETION_H_

#include <functional>
#include <future>
#include <utility>
#include <variant>

#include "ferry/client/publisher.h"

namespace ferry::client::internal {

// Move-only; Complete() must be called exactly once. A callback costs no
// shared state and no synchronization, a future one allocation and a
// mutex/condition pair per completion.
template <typename Result>
class BasicCompletion {
 public:
  using Callback = std::function<void(Result)>;

  // A completion for a future, and the future.
  static std::pair<BasicCompletion, std::future<Result>> WithFuture() {
    BasicCompletion completion;
    std::future<Result> future =
        completion.target_.template emplace<std::promise<Result>>().get_future();
    return {std::move(completion), std::move(future)};
  }
  static BasicCompletion WithCallback(Callback callback) {
    BasicCompletion completion;
    completion.target_ = std::move(callback);
    return completion;
  }

  BasicCompletion() = default;
  BasicCompletion(BasicCompletion&&) noexcept = default;
  BasicCompletion& operator=(BasicCompletion&&) noexcept = default;

  // By reference: the result is moved once, into the promise or the
  // callback's parameter.
  void Complete(Result&& result) {
    if (auto* promise = std::get_if<std::promise<Result>>(&target_)) {
      promise->set_value(std::move(result));
    } else if (auto* callback = std::get_if<Callback>(&target_)) {
      (*callback)(std::move(result));
    }
  }

 private:
  // monostate first: default construction allocates nothing.
  std::variant<std::monostate, std::promise<Result>, Callback> target_;
};

// One message's result (Publish).
using Completion = BasicCompletion<PublishResult>;
// A PublishMany call's result.
using ManyCompletion = BasicCompletion<PublishManyResult>;

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_COMPLETION_H_
