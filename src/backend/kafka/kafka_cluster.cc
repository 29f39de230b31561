#include "backend/kafka/kafka_cluster.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "backend/kafka/kafka_group_member.h"
#include "backend/kafka/topic_admin.h"

namespace ferry::backend::kafka {
namespace {

// librdkafka log levels are syslog levels; its connection chatter is
// repeated on every retry, so it goes to debug and state changes are logged
// by the probe instead.
void OnLog(const rd_kafka_t*, int level, const char* facility, const char* buf) {
  spdlog::debug("librdkafka level={} facility={} {}", level, facility, buf);
}

// What the probe's metadata requests name: a topic Ferry owns (the breakers'
// probe messages go to it), answered whether or not it exists; small when
// it does.
constexpr char kProbeTopic[] = "__ferry_probe";

Properties ClientProperties(const config::ClusterConfig& config) {
  Properties properties = config.properties;
  properties["bootstrap.servers"] = config.bootstrap;
  return properties;
}

}  // namespace

KafkaCluster::KafkaCluster(const config::ClusterConfig& config, const Options& options,
                           ClientFactory& factory)
    : name_(config.name),
      bootstrap_(config.bootstrap),
      options_(options),
      client_properties_(ClientProperties(config)),
      config_(config),
      factory_(factory) {}

absl::StatusOr<RdKafkaPtr> KafkaCluster::NewProducer(const config::ClusterConfig& config,
                                                     const Options& options,
                                                     ClientFactory& factory,
                                                     KafkaCluster* opaque) {
  const std::string prefix = fmt::format("clusters.{}.properties.", config.name);
  auto conf = BuildConf(config.properties, prefix);
  if (!conf.ok()) return conf.status();
  Properties fixed = ProducerProperties(config, options);
  for (const auto& [key, value] : fixed) {
    char error[512];
    if (rd_kafka_conf_set(conf->get(), key.c_str(), value.c_str(), error,
                          sizeof(error)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          fmt::format("clusters.{}: {}: {}", config.name, key, error));
    }
  }
  rd_kafka_conf_set_opaque(conf->get(), opaque);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaCluster::OnError);
  rd_kafka_conf_set_log_cb(conf->get(), &OnLog);
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaCluster::OnDelivery);
  // Topic-level properties (message.timeout.ms, ...) set above live in the
  // default topic conf: add the partitioner to it rather than replacing it.
  rd_kafka_topic_conf_t* topic_conf = rd_kafka_conf_get_default_topic_conf(conf->get());
  if (topic_conf == nullptr) {
    topic_conf = rd_kafka_topic_conf_new();
    rd_kafka_conf_set_default_topic_conf(conf->get(), topic_conf);
  }
  rd_kafka_topic_conf_set_partitioner_cb(topic_conf, &KafkaCluster::Partition);
  auto handle = factory.Create(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!handle.ok()) {
    return absl::InvalidArgumentError(fmt::format(
        "clusters.{}: {}", config.name, std::string(handle.status().message())));
  }
  return handle;
}

absl::StatusOr<std::unique_ptr<KafkaCluster>> KafkaCluster::Start(
    const config::ClusterConfig& config, const Options& options, ClientFactory& factory) {
  const std::string prefix = fmt::format("clusters.{}.properties.", config.name);
  if (absl::Status s = RequireDurableProducer(config.properties, prefix); !s.ok()) {
    return s;
  }
  std::unique_ptr<KafkaCluster> cluster(new KafkaCluster(config, options, factory));
  auto producer = NewProducer(config, options, factory, cluster.get());
  if (!producer.ok()) return producer.status();
  cluster->producer_ = std::make_shared<ProducerHandle>(*std::move(producer));

  // The administration handle never produces, so it needs no producer id.
  // Naming a topic in a metadata request must not create it (librdkafka's
  // producer default would ask brokers with auto.create.topics.enable to).
  Properties admin_properties = cluster->client_properties_;
  admin_properties["enable.idempotence"] = "false";
  admin_properties["allow.auto.create.topics"] = "false";
  auto conf = BuildConf(admin_properties, prefix);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_opaque(conf->get(), cluster.get());
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaCluster::OnError);
  rd_kafka_conf_set_log_cb(conf->get(), &OnLog);
  auto handle = factory.Create(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!handle.ok()) {
    return absl::InvalidArgumentError(fmt::format(
        "clusters.{}: {}", config.name, std::string(handle.status().message())));
  }
  cluster->handle_ = *std::move(handle);
  cluster->probe_topic_ =
      rd_kafka_topic_new(cluster->handle_.get(), kProbeTopic, nullptr);
  if (cluster->probe_topic_ == nullptr) {
    return absl::InternalError(
        fmt::format("clusters.{}: cannot create a topic handle: {}", config.name,
                    rd_kafka_err2str(rd_kafka_last_error())));
  }
  cluster->group_admin_ =
      std::make_unique<GroupAdmin>(cluster->client_properties_, cluster->handle_.get(),
                                   factory, options.admin_timeout);
  cluster->poll_thread_ = std::thread([c = cluster.get()] { c->PollLoop(); });
  cluster->probe_thread_ = std::thread([c = cluster.get()] { c->ProbeLoop(); });
  return cluster;
}

KafkaCluster::~KafkaCluster() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (probe_thread_.joinable()) probe_thread_.join();
  if (poll_thread_.joinable()) poll_thread_.join();
  if (probe_topic_ != nullptr) rd_kafka_topic_destroy(probe_topic_);
  if (std::shared_ptr<ProducerHandle> producer = this->producer()) {
    FailOutstanding(producer->get(), absl::Seconds(2));
  }
}

std::shared_ptr<ProducerHandle> KafkaCluster::producer() const {
  absl::ReaderMutexLock lock(&producer_mu_);
  return producer_;
}

void KafkaCluster::ReplaceProducer() {
  auto fresh = NewProducer(config_, options_, factory_, this);
  if (!fresh.ok()) {
    spdlog::error("cluster={} cannot create a new producer: {}", name_,
                  std::string(fresh.status().message()));
    absl::SleepFor(absl::Seconds(1));  // tried again on the next turn
    return;
  }
  std::shared_ptr<ProducerHandle> old;
  {
    absl::WriterMutexLock lock(&producer_mu_);
    old = std::exchange(producer_, std::make_shared<ProducerHandle>(*std::move(fresh)));
  }
  // A producer in fatal state accepts no new record, so after this every
  // record it held has had its callback.
  FailOutstanding(old->get(), absl::ZeroDuration());
  {
    absl::MutexLock lock(&mu_);
    fatal_error_.clear();
  }
  spdlog::warn("cluster={} replaced the producer after its fatal error", name_);
}

void KafkaCluster::OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaCluster*>(opaque);
  // "N/N brokers are down" follows the per-broker error that explains it.
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) return;
  std::string message = reason;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    // The idempotent producer cannot continue: the poll thread replaces it.
    char fatal[512];
    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    message = fmt::format("fatal producer error: {}", fatal);
    spdlog::error("cluster={} {}", self->name_, message);
  }
  absl::MutexLock lock(&self->mu_);
  self->last_client_error_ = message;
  if (err == RD_KAFKA_RESP_ERR__FATAL) self->fatal_error_ = message;
}

ClusterStatus KafkaCluster::Status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

ClusterStatus KafkaCluster::Describe(bool include_topics) {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(
      handle_.get(), include_topics ? 1 : 0, include_topics ? nullptr : probe_topic_,
      &metadata, static_cast<int>(absl::ToInt64Milliseconds(options_.probe_timeout)));

  ClusterStatus next;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    next.state = ClusterState::kUp;
    next.last_contact = absl::Now();
    for (int i = 0; i < metadata->broker_cnt; ++i) {
      const auto& b = metadata->brokers[i];
      next.brokers.push_back({b.id, b.host, b.port});
    }
    for (int i = 0; include_topics && i < metadata->topic_cnt; ++i) {
      std::string topic = metadata->topics[i].topic;
      if (!topic.starts_with("__")) next.topics.push_back(std::move(topic));
    }
    rd_kafka_metadata_destroy(metadata);
  }

  absl::MutexLock lock(&mu_);
  if (!fatal_error_.empty()) {
    next = ClusterStatus();
    next.state = ClusterState::kDown;
    next.error = fatal_error_;
  } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    next.state = ClusterState::kDown;
    next.last_contact = status_.last_contact;
    next.error = fmt::format("metadata request to {} failed: {}", bootstrap_,
                             rd_kafka_err2str(err));
    if (!last_client_error_.empty()) {
      next.error += fmt::format(" ({})", last_client_error_);
    }
  }
  if (next.state != status_.state) {
    if (next.state == ClusterState::kUp) {
      spdlog::info("cluster={} state=up bootstrap={} brokers={}", name_, bootstrap_,
                   next.brokers.size());
    } else {
      spdlog::warn("cluster={} state=down error=\"{}\"", name_, next.error);
    }
  }
  status_ = next;
  return next;
}

absl::StatusOr<TopicInfo> KafkaCluster::DescribeTopic(const std::string& topic) {
  return kafka::DescribeTopic(handle_.get(), topic, options_.admin_timeout);
}

absl::StatusOr<TopicInfo> KafkaCluster::DescribeTopicWithin(const std::string& topic,
                                                            absl::Duration timeout) {
  return kafka::DescribeTopic(handle_.get(), topic,
                              std::min(timeout, options_.admin_timeout));
}

absl::Status KafkaCluster::CreateTopic(
    const std::string& topic, int partitions, int replication_factor,
    const std::map<std::string, std::string>& configs) {
  // One deadline for both steps: CreateTopic stays within admin_timeout.
  const absl::Time deadline = absl::Now() + options_.admin_timeout;
  absl::Status status =
      kafka::CreateTopic(handle_.get(), topic, partitions, replication_factor, configs,
                         options_.admin_timeout);
  // The topic can be used at once, also when the producer was told it did
  // not exist before.
  if (status.ok() || status.code() == absl::StatusCode::kAlreadyExists) {
    producer()->RelearnTopic(topic, deadline);
  }
  return status;
}

absl::Status KafkaCluster::DeleteTopic(const std::string& topic) {
  return kafka::DeleteTopic(handle_.get(), topic, options_.admin_timeout);
}

void KafkaCluster::PollLoop() {
  // Delivery reports and error callbacks are served only by poll.
  while (true) {
    rd_kafka_poll(producer()->get(), 100);
    rd_kafka_poll(handle_.get(), 0);
    bool replace = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      replace = !fatal_error_.empty();
    }
    if (replace) ReplaceProducer();
  }
}

void KafkaCluster::ProbeLoop() {
  while (true) {
    Describe(/*include_topics=*/false);
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.probe_interval)) {
      return;
    }
  }
}

absl::StatusOr<std::unique_ptr<GroupMember>> KafkaCluster::JoinGroup(
    const GroupMemberOptions& options, GroupMemberListener* listener) {
  if (absl::Status checked = CheckReaderOptions(options); !checked.ok()) return checked;
  auto member = KafkaGroupMember::Join(
      client_properties_, fmt::format("clusters.{}.properties.", name_), options,
      {.session_timeout = options_.group_session_timeout}, listener, factory_);
  if (!member.ok()) return member.status();
  return std::unique_ptr<GroupMember>(*std::move(member));
}

absl::StatusOr<std::map<TopicPartition, int64_t>> KafkaCluster::CommittedOffsets(
    const std::string& group, const std::vector<std::string>& topics) {
  return group_admin_->CommittedOffsets(group, topics, options_.admin_timeout);
}

absl::StatusOr<std::map<TopicPartition, int64_t>> KafkaCluster::CommittedOffsetsWithin(
    const std::string& group, const std::vector<std::string>& topics,
    absl::Duration timeout) {
  return group_admin_->CommittedOffsets(group, topics,
                                        std::min(timeout, options_.admin_timeout));
}

absl::Status KafkaCluster::AlterCommittedOffsets(
    const std::string& group, const std::map<TopicPartition, int64_t>& offsets) {
  return group_admin_->AlterCommittedOffsets(group, offsets);
}

absl::StatusOr<std::map<TopicPartition, int64_t>> KafkaCluster::OffsetsForTime(
    const std::string& topic, int64_t timestamp_ms) {
  return group_admin_->OffsetsForTime(topic, timestamp_ms);
}

absl::StatusOr<std::vector<std::string>> KafkaCluster::ListGroups() {
  return group_admin_->ListGroups();
}

absl::StatusOr<GroupDescription> KafkaCluster::DescribeGroup(const std::string& group) {
  return group_admin_->DescribeGroup(group);
}

}  // namespace ferry::backend::kafka
