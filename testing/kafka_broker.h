#pragma once

// A real single-node KRaft Kafka broker for integration tests, driven through
// scripts/kafka/kafka (located via the FERRY_SOURCE_DIR compile definition).
// Brokers run as separate JVM processes listening on 127.0.0.1; their state
// lives in $FERRY_KAFKA_STATE/<name> (default /tmp/ferry-kafka/<name>).

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::testing {

// A second listener, SASL_SSL, beside the PLAINTEXT one: TLS with `cert` and
// `key` (PEM paths, e.g. from TestCertificates::IssueServer) and
// SCRAM-SHA-512 for one user, as managed Kafka services expose.
struct SaslSslListener {
  std::string cert;
  std::string key;
  std::string user;
  std::string password;
};

// Owns one broker process and its data directory; destruction stops the
// broker and deletes the data. Lifecycle methods (Kill9, Restart, Stop) must
// not race with each other; the const methods may be called from any thread.
// A broker leaks (keeps running) only if the owning process dies without
// running destructors: `scripts/kafka/kafka status` lists it, `wipe` removes
// it.
class KafkaBroker {
 public:
  // Picks two free loopback ports (broker, controller), names the broker
  // "<name_prefix>-<pid>-<counter>" and starts it; returns once it answers
  // metadata. On failure the status carries the tail of the script's output
  // (e.g. the broker log) and nothing is left behind. With `sasl_ssl`, a
  // third port serves that listener (sasl_ssl_bootstrap()); the PLAINTEXT
  // one stays, for the helpers below.
  static absl::StatusOr<std::unique_ptr<KafkaBroker>> Start(
      std::string name_prefix = "it", std::optional<SaslSslListener> sasl_ssl = {});

  KafkaBroker(const KafkaBroker&) = delete;
  KafkaBroker& operator=(const KafkaBroker&) = delete;
  // Stops the broker and deletes its data. Never throws; failures are logged
  // to stderr. Does nothing in a forked child of the process that started it.
  ~KafkaBroker();

  // "127.0.0.1:<port>". Stable across Kill9/Restart.
  std::string bootstrap() const;
  // The SASL_SSL listener's "127.0.0.1:<port>"; empty without one.
  std::string sasl_ssl_bootstrap() const;
  const std::string& name() const;

  // SIGKILLs the broker and waits for it to die; the data directory is kept.
  absl::Status Kill9();
  // Stops the broker if it is running (gracefully) and starts it again on the
  // same ports and data directory, so topics and records survive. Returns once
  // it answers metadata.
  absl::Status Restart();
  // SIGSTOP / SIGCONT: the broker hangs with its connections open (a long GC
  // pause, a stalled disk) and later goes on where it stopped.
  absl::Status Pause();
  absl::Status Resume();
  // Graceful shutdown (SIGTERM, SIGKILL after 30 s); data is kept and
  // Restart() brings it back. OK if it was not running.
  absl::Status Stop();

  // Creates a topic through the Admin API and waits until the broker's
  // metadata shows every partition with a leader, so clients can use it
  // immediately. Gives up after 30 s. Errors: ALREADY_EXISTS if the topic
  // exists, INVALID_ARGUMENT for bad names/counts, DEADLINE_EXCEEDED or
  // UNAVAILABLE if the broker does not answer; messages name the topic and
  // the Kafka error code.
  absl::Status CreateTopic(const std::string& topic, int partitions,
                           int replication = 1) const;
  // All topic names in the broker's metadata (internal topics such as
  // __consumer_offsets included once they exist), sorted.
  absl::StatusOr<std::vector<std::string>> ListTopics() const;

 private:
  KafkaBroker(std::string name, int port, int controller_port);

  absl::Status StartProcess() const;

  std::string name_;
  int port_;
  int controller_port_;
  int sasl_ssl_port_ = 0;
  std::optional<SaslSslListener> sasl_ssl_;
  pid_t owner_pid_;
};

// One broker shared by all tests of the calling test binary, started on first
// call and wiped at process exit (it is a function-local static, so normal
// exit or return from main cleans up; a crash or SIGKILL leaks it).
// Thread-safe. If the broker cannot start, records a gtest failure carrying the
// script's message in the current test and returns nullptr (and keeps doing so
// without retrying), so callers should `ASSERT_NE(broker, nullptr)`. Tests that
// Kill9/Restart/Stop must use their own KafkaBroker::Start().
KafkaBroker* SharedBroker();

}  // namespace ferry::testing
