// An in-process ferry.v1.Publisher node for SDK tests: listens on
// 127.0.0.1:<free port>, records what it receives and can be scripted to fail
// messages or whole calls, to hold or delay its answers, and to go away.
#ifndef FERRY_CLIENT_TEST_FAKE_NODE_H_
#define FERRY_CLIENT_TEST_FAKE_NODE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "ferry/v1/publisher.grpc.pb.h"

namespace ferry::client::testing {

// A message the node wrote (answered OK), in the order it wrote them.
struct Accepted {
  std::string topic;
  std::string key;
  std::string ordering_key;
  std::string value;
  std::string id;
  int32_t partition = 0;
  int64_t offset = 0;
};

class FakeNode {
 public:
  // Starts serving; `cluster` is reported in every OK result.
  explicit FakeNode(std::string cluster = "fake");
  ~FakeNode();  // Shutdown().

  const std::string& address() const { return address_; }

  // The next message with this value fails with `code` (once). A retryable
  // failure also fails the later messages of the same ordering key in that
  // call (retryably), as a Kafka partition batch would.
  void FailMessageOnce(const std::string& value, int code, bool retryable,
                       const std::string& reason = "scripted message failure");
  // The next `calls` calls fail as a whole with `code` (nothing is written).
  void FailCalls(int calls, grpc::StatusCode code);
  // Answers a call that asks for compact results (PublishRequest.
  // compact_results) and whose messages were all written in the compact form,
  // as a node that knows it does; off by default (an older node).
  void AnswerCompact(bool compact);
  // Answers wait `delay` (written at arrival, answered later).
  void DelayAnswers(std::chrono::milliseconds delay);
  // Answers wait until ReleaseAll() (or Shutdown()).
  void HoldAnswers(bool hold);
  void ReleaseAll();
  // Answers only the held call that arrived last (if any).
  void ReleaseLatest();
  // Answers what is held with UNAVAILABLE and stops listening: new calls
  // fail to connect.
  void Shutdown();

  // Observations. All thread-safe.
  std::vector<ferry::v1::PublishRequest> calls() const;
  std::vector<Accepted> accepted() const;
  std::size_t held() const;
  // Calls that arrived while another unanswered call held one of their
  // ordering keys.
  int key_overlaps() const;
  // Most calls ever unanswered at once.
  int max_concurrent_calls() const;
  // Waits until at least `count` answers are held; false on timeout.
  bool WaitForHeld(std::size_t count, std::chrono::milliseconds timeout) const;

 private:
  class Service;
  struct Held {
    grpc::ServerUnaryReactor* reactor;
    std::vector<std::string> keys;
    std::chrono::steady_clock::time_point due;
    grpc::Status status;
  };

  grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* context,
                                   const ferry::v1::PublishRequest* request,
                                   ferry::v1::PublishResponse* response);
  void Answerer();  // Finishes delayed answers when due.
  void Answer(Held held) ABSL_LOCKS_EXCLUDED(mu_);
  void CloseKeys(const std::vector<std::string>& keys) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string cluster_;
  std::string address_;

  mutable absl::Mutex mu_;
  struct Failure {
    int code;
    bool retryable;
    std::string reason;
  };
  std::map<std::string, Failure> fail_messages_ ABSL_GUARDED_BY(mu_);
  int fail_calls_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::StatusCode fail_calls_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
  std::chrono::milliseconds delay_ ABSL_GUARDED_BY(mu_){0};
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool compact_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
  std::vector<ferry::v1::PublishRequest> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<Accepted> accepted_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, int64_t> next_offset_ ABSL_GUARDED_BY(mu_);
  std::multiset<std::string> open_keys_ ABSL_GUARDED_BY(mu_);
  int key_overlaps_ ABSL_GUARDED_BY(mu_) = 0;
  int open_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int max_concurrent_calls_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped whenever held_ gains an answer with a due time, for Answerer().
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::thread answerer_;
};

}  // namespace ferry::client::testing

#endif  // FERRY_CLIENT_TEST_FAKE_NODE_H_
