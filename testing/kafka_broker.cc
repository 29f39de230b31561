#include "testing/kafka_broker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "testing/kafka_client.h"

#ifndef FERRY_SOURCE_DIR
#error "FERRY_SOURCE_DIR must be defined (the Ferry source tree root)"
#endif

namespace ferry::testing {
namespace {

constexpr int kAdminTimeoutMs = 30000;
constexpr size_t kOutputTailBytes = 4000;

// Owns a file descriptor; closes it on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Runs `bash scripts/kafka/kafka args...` with stdin from /dev/null and no
// inherited descriptors beyond stdout/stderr, which are captured together.
// Blocks until the script exits: `start` gives up after $FERRY_KAFKA_START_TIMEOUT
// (default 60) s, but a first-ever jar download from Maven is not bounded.
absl::Status RunScript(const std::vector<std::string>& args) {
  std::vector<std::string> words = {"bash", FERRY_SOURCE_DIR "/scripts/kafka/kafka"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  const std::string command = absl::StrCat("kafka ", absl::StrJoin(args, " "));

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  // Keeps the broker JVM (which outlives the script) from holding our sockets.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid;
  int rc = posix_spawnp(&pid, "bash", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::ErrnoToStatus(rc, "posix_spawnp bash");
  // EOF arrives when the script exits; the broker JVM it leaves running
  // writes to its own log, not to this pipe.
  write_end.Reset();

  std::string output;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(read_end.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
    if (output.size() > 2 * kOutputTailBytes) {
      output.erase(0, output.size() - kOutputTailBytes);
    }
  }
  if (output.size() > kOutputTailBytes) {
    output.erase(0, output.size() - kOutputTailBytes);
  }

  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0) {
    if (errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid");
  }
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) {
    return absl::OkStatus();
  }
  std::string how = WIFEXITED(wait_status)
                        ? absl::StrCat("exited with status ", WEXITSTATUS(wait_status))
                        : absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  return absl::InternalError(
      absl::StrCat("`", command, "` ", how, "; output:\n", output));
}

// Binds `count` loopback sockets to port 0 at once (so the ports differ),
// reads the ports, then closes them. Another process may take a port before
// the broker binds it; that shows up as a start failure, not a hang.
absl::StatusOr<std::vector<int>> PickFreePorts(int count) {
  std::vector<Fd> sockets(static_cast<size_t>(count));
  std::vector<int> ports;
  for (Fd& socket_fd : sockets) {
    socket_fd.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (socket_fd.get() < 0) return absl::ErrnoToStatus(errno, "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(socket_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return absl::ErrnoToStatus(errno, "bind 127.0.0.1:0");
    }
    socklen_t len = sizeof(addr);
    if (getsockname(socket_fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return absl::ErrnoToStatus(errno, "getsockname");
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  return ports;
}

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

absl::StatusOr<KafkaPtr> NewAdminClient(const std::string& bootstrap) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr,
                        sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(errstr);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("rd_kafka_new: ", errstr));
  }
  return KafkaPtr(rk);
}

// Returns true once `topic` has `partitions` partitions, each with a leader.
absl::StatusOr<bool> TopicReady(rd_kafka_t* rk, const std::string& topic,
                                int partitions) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, 5000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErrorStatus(err, "metadata");
  }
  bool ready = false;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    if (topic != t.topic || t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    ready =
        t.partition_cnt == partitions &&
        std::all_of(t.partitions, t.partitions + t.partition_cnt,
                    [](const rd_kafka_metadata_partition_t& p) { return p.leader >= 0; });
  }
  rd_kafka_metadata_destroy(md);
  return ready;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaBroker>> KafkaBroker::Start(
    std::string name_prefix, std::optional<SaslSslListener> sasl_ssl) {
  static std::atomic<int> counter{0};
  absl::StatusOr<std::vector<int>> ports = PickFreePorts(sasl_ssl ? 3 : 2);
  if (!ports.ok()) return ports.status();
  std::string name = absl::StrCat(name_prefix, "-", getpid(), "-", counter.fetch_add(1));
  std::unique_ptr<KafkaBroker> broker(
      new KafkaBroker(std::move(name), (*ports)[0], (*ports)[1]));
  if (sasl_ssl) {
    broker->sasl_ssl_port_ = (*ports)[2];
    broker->sasl_ssl_ = std::move(sasl_ssl);
  }
  // A process that earlier had our pid may have left this name behind.
  if (absl::Status s = RunScript({"wipe", broker->name_}); !s.ok()) return s;
  if (absl::Status s = broker->StartProcess(); !s.ok()) return s;
  return broker;
}

KafkaBroker::KafkaBroker(std::string name, int port, int controller_port)
    : name_(std::move(name)),
      port_(port),
      controller_port_(controller_port),
      owner_pid_(getpid()) {}

KafkaBroker::~KafkaBroker() {
  // A forked child that exits normally must not take the parent's broker down.
  if (getpid() != owner_pid_) return;
  try {
    absl::Status s = RunScript({"wipe", name_});
    if (!s.ok()) {
      std::fprintf(stderr, "KafkaBroker %s: cleanup failed: %s\n", name_.c_str(),
                   s.ToString().c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "KafkaBroker %s: cleanup failed: %s\n", name_.c_str(), e.what());
  }
}

std::string KafkaBroker::bootstrap() const { return absl::StrCat("127.0.0.1:", port_); }

std::string KafkaBroker::sasl_ssl_bootstrap() const {
  return sasl_ssl_ ? absl::StrCat("127.0.0.1:", sasl_ssl_port_) : "";
}

const std::string& KafkaBroker::name() const { return name_; }

absl::Status KafkaBroker::StartProcess() const {
  std::vector<std::string> args = {"start", name_, absl::StrCat(port_),
                                   absl::StrCat(controller_port_)};
  if (sasl_ssl_) {
    args.insert(args.end(), {"--sasl-ssl", absl::StrCat(sasl_ssl_port_), "--cert",
                             sasl_ssl_->cert, "--key", sasl_ssl_->key, "--scram",
                             absl::StrCat(sasl_ssl_->user, "=", sasl_ssl_->password)});
  }
  return RunScript(args);
}

absl::Status KafkaBroker::Kill9() { return RunScript({"kill", name_}); }

absl::Status KafkaBroker::Pause() { return RunScript({"pause", name_}); }

absl::Status KafkaBroker::Resume() { return RunScript({"resume", name_}); }

absl::Status KafkaBroker::Restart() {
  if (absl::Status s = Stop(); !s.ok()) return s;
  return StartProcess();
}

absl::Status KafkaBroker::Stop() { return RunScript({"stop", name_}); }

absl::Status KafkaBroker::CreateTopic(const std::string& topic, int partitions,
                                      int replication) const {
  const std::string context = absl::StrCat("create topic ", topic, " (", partitions, "x",
                                           replication, ") on ", bootstrap());
  absl::StatusOr<KafkaPtr> client = NewAdminClient(bootstrap());
  if (!client.ok()) return client.status();
  rd_kafka_t* rk = client->get();

  char errstr[512];
  rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(
      topic.c_str(), partitions, replication, errstr, sizeof(errstr));
  if (new_topic == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": ", errstr));
  }
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, kAdminTimeoutMs, errstr,
                                            sizeof(errstr));
  rd_kafka_AdminOptions_set_operation_timeout(options, kAdminTimeoutMs, errstr,
                                              sizeof(errstr));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &new_topic, 1, options, queue);
  // The request timeout makes librdkafka post a result; the margin only
  // guards against that not happening.
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, kAdminTimeoutMs + 5000);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(new_topic);
  if (event == nullptr) {
    return absl::DeadlineExceededError(absl::StrCat(context, ": no CreateTopics result"));
  }

  absl::Status status;
  if (rd_kafka_resp_err_t err = rd_kafka_event_error(event); err) {
    status = KafkaErrorStatus(err, context, rd_kafka_event_error_string(event));
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(event), &count);
    for (size_t i = 0; i < count && status.ok(); ++i) {
      const char* detail = rd_kafka_topic_result_error_string(results[i]);
      status = KafkaErrorStatus(rd_kafka_topic_result_error(results[i]), context,
                                detail == nullptr ? "" : detail);
    }
  }
  rd_kafka_event_destroy(event);
  if (!status.ok()) return status;

  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kAdminTimeoutMs);
  for (;;) {
    absl::StatusOr<bool> ready = TopicReady(rk, topic, partitions);
    if (ready.ok() && *ready) return absl::OkStatus();
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          context, ": created, but partitions have no leader after ", kAdminTimeoutMs,
          " ms", ready.ok() ? "" : absl::StrCat(" (", ready.status().message(), ")")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::StatusOr<std::vector<std::string>> KafkaBroker::ListTopics() const {
  absl::StatusOr<KafkaPtr> client = NewAdminClient(bootstrap());
  if (!client.ok()) return client.status();
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(client->get(), 1, nullptr, &md, kAdminTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErrorStatus(err, absl::StrCat("list topics on ", bootstrap()));
  }
  std::vector<std::string> topics;
  for (int i = 0; i < md->topic_cnt; ++i) topics.push_back(md->topics[i].topic);
  rd_kafka_metadata_destroy(md);
  std::sort(topics.begin(), topics.end());
  return topics;
}

KafkaBroker* SharedBroker() {
  static absl::StatusOr<std::unique_ptr<KafkaBroker>> shared =
      KafkaBroker::Start("shared");
  if (!shared.ok()) {
    ADD_FAILURE() << "shared Kafka broker did not start: " << shared.status();
    return nullptr;
  }
  return shared->get();
}

}  // namespace ferry::testing
