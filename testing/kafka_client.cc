#include "testing/kafka_client.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ferry::testing {
namespace {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

absl::StatusOr<ConfPtr> MakeConf(const std::map<std::string, std::string>& config) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [key, value] : config) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("librdkafka config ", key, "=", value, ": ", errstr));
    }
  }
  return conf;
}

// Takes ownership of `conf` (librdkafka does on success; we do on failure).
absl::StatusOr<KafkaPtr> MakeClient(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("rd_kafka_new: ", errstr));
  }
  conf.release();
  return KafkaPtr(rk);
}

struct Delivery {
  bool done = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  auto* delivery = static_cast<Delivery*>(msg->_private);
  delivery->err = msg->err;
  delivery->done = true;
}

}  // namespace

absl::Status KafkaErrorStatus(rd_kafka_resp_err_t err, std::string_view context,
                              std::string_view detail) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  // Debian's absl::string_view is not std::string_view: build the message
  // with std::string.
  std::string message(context);
  message += ": ";
  message += rd_kafka_err2name(err);
  message += ": ";
  message += detail.empty() ? std::string_view(rd_kafka_err2str(err)) : detail;
  switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return absl::AlreadyExistsError(message);
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return absl::DeadlineExceededError(message);
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return absl::InvalidArgumentError(message);
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return absl::NotFoundError(message);
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status ProduceOne(const std::string& bootstrap, const std::string& topic,
                        std::string_view value,
                        const std::map<std::string, std::string>& config) {
  std::map<std::string, std::string> merged = {{"bootstrap.servers", bootstrap},
                                               {"message.timeout.ms", "30000"}};
  for (const auto& [key, val] : config) merged[key] = val;
  absl::StatusOr<ConfPtr> conf = MakeConf(merged);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), OnDelivery);
  absl::StatusOr<KafkaPtr> producer = MakeClient(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!producer.ok()) return producer.status();
  rd_kafka_t* rk = producer->get();

  Delivery delivery;
  rd_kafka_resp_err_t err =
      rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_OPAQUE(&delivery), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErrorStatus(err, absl::StrCat("produce to ", topic));
  }
  // librdkafka always reports delivery within message.timeout.ms, so this
  // loop ends; `delivery` must outlive it because the callback writes to it.
  while (!delivery.done) rd_kafka_poll(rk, 100);
  return KafkaErrorStatus(delivery.err,
                          absl::StrCat("delivery to ", topic, " at ", bootstrap));
}

absl::Status ProduceToPartition(
    const std::string& bootstrap, const std::string& topic, int32_t partition,
    std::string_view value,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  absl::StatusOr<ConfPtr> conf =
      MakeConf({{"bootstrap.servers", bootstrap}, {"message.timeout.ms", "30000"}});
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), OnDelivery);
  absl::StatusOr<KafkaPtr> producer = MakeClient(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!producer.ok()) return producer.status();
  rd_kafka_t* rk = producer->get();
  // Owned by the message once produced; freed here only if producing fails.
  rd_kafka_headers_t* record_headers = rd_kafka_headers_new(headers.size());
  for (const auto& [key, val] : headers) {
    rd_kafka_header_add(record_headers, key.data(), static_cast<ssize_t>(key.size()),
                        val.data(), static_cast<ssize_t>(val.size()));
  }
  Delivery delivery;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_HEADERS(record_headers), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_OPAQUE(&delivery), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(record_headers);
    return KafkaErrorStatus(err, absl::StrCat("produce to ", topic));
  }
  while (!delivery.done) rd_kafka_poll(rk, 100);
  return KafkaErrorStatus(delivery.err,
                          absl::StrCat("delivery to ", topic, " at ", bootstrap));
}

absl::Status ProduceInTransaction(const std::string& bootstrap, const std::string& topic,
                                  int32_t partition,
                                  const std::vector<std::string>& values) {
  static std::atomic<int> next_id{0};
  absl::StatusOr<ConfPtr> conf = MakeConf(
      {{"bootstrap.servers", bootstrap},
       {"transactional.id", absl::StrCat("ferry-test-", getpid(), "-", next_id++)},
       {"message.timeout.ms", "30000"}});
  if (!conf.ok()) return conf.status();
  absl::StatusOr<KafkaPtr> producer = MakeClient(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!producer.ok()) return producer.status();
  rd_kafka_t* rk = producer->get();
  const auto failed = [](rd_kafka_error_t* error, std::string_view what) {
    absl::Status status =
        KafkaErrorStatus(rd_kafka_error_code(error), what, rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return status;
  };
  if (rd_kafka_error_t* error = rd_kafka_init_transactions(rk, 30000)) {
    return failed(error, "init transactions");
  }
  if (rd_kafka_error_t* error = rd_kafka_begin_transaction(rk)) {
    return failed(error, "begin transaction");
  }
  for (const std::string& value : values) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaErrorStatus(err, absl::StrCat("produce to ", topic));
    }
  }
  if (rd_kafka_error_t* error = rd_kafka_commit_transaction(rk, 30000)) {
    return failed(error, "commit transaction");
  }
  return absl::OkStatus();
}

absl::Status ProduceMany(
    const std::string& bootstrap, const std::string& topic,
    const std::vector<std::pair<std::string, std::string>>& records) {
  absl::StatusOr<ConfPtr> conf = MakeConf({{"bootstrap.servers", bootstrap},
                                           {"message.timeout.ms", "30000"},
                                           {"enable.idempotence", "true"},
                                           {"linger.ms", "5"}});
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), OnDelivery);
  absl::StatusOr<KafkaPtr> producer = MakeClient(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!producer.ok()) return producer.status();
  rd_kafka_t* rk = producer->get();
  std::vector<Delivery> deliveries(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& [key, value] = records[i];
    rd_kafka_resp_err_t err;
    do {
      err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_KEY(key.empty() ? nullptr : const_cast<char*>(key.data()),
                         key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&deliveries[i]),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(rk, 10);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaErrorStatus(err, absl::StrCat("produce to ", topic));
    }
  }
  rd_kafka_flush(rk, 60000);
  for (const Delivery& d : deliveries) {
    while (!d.done) rd_kafka_poll(rk, 100);
    if (d.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaErrorStatus(d.err, absl::StrCat("delivery to ", topic));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<int32_t, int64_t>> CommittedOffsets(const std::string& bootstrap,
                                                            const std::string& group,
                                                            const std::string& topic,
                                                            int32_t partitions) {
  absl::StatusOr<ConfPtr> conf = MakeConf({{"bootstrap.servers", bootstrap},
                                           {"group.id", group},
                                           {"enable.auto.commit", "false"}});
  if (!conf.ok()) return conf.status();
  absl::StatusOr<KafkaPtr> consumer = MakeClient(RD_KAFKA_CONSUMER, *std::move(conf));
  if (!consumer.ok()) return consumer.status();
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  }
  rd_kafka_resp_err_t err = rd_kafka_committed(consumer->get(), list, 10000);
  std::map<int32_t, int64_t> offsets;
  for (int i = 0; i < list->cnt; ++i) {
    offsets[list->elems[i].partition] = list->elems[i].offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErrorStatus(err, absl::StrCat("committed offsets of ", group));
  }
  return offsets;
}

absl::StatusOr<std::vector<ConsumedRecord>> ConsumeRecords(
    const std::string& bootstrap, const std::string& topic,
    const std::vector<int32_t>& partitions, size_t count,
    std::chrono::milliseconds timeout) {
  absl::StatusOr<ConfPtr> conf = MakeConf({{"bootstrap.servers", bootstrap},
                                           {"group.id", "ferry-testing"},
                                           {"enable.auto.commit", "false"},
                                           {"enable.partition.eof", "false"}});
  if (!conf.ok()) return conf.status();
  absl::StatusOr<KafkaPtr> consumer = MakeClient(RD_KAFKA_CONSUMER, *std::move(conf));
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = consumer->get();

  rd_kafka_topic_partition_list_t* assignment =
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
  for (int32_t partition : partitions) {
    rd_kafka_topic_partition_list_add(assignment, topic.c_str(), partition)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(rk, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaErrorStatus(err, absl::StrCat("assign ", topic));
  }

  std::vector<ConsumedRecord> records;
  std::string last_error = "none";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (records.size() < count && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk, 100);
    if (msg == nullptr) continue;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ConsumedRecord record;
      record.partition = msg->partition;
      record.offset = msg->offset;
      record.has_key = msg->key != nullptr;
      if (msg->key != nullptr) {
        record.key.assign(static_cast<const char*>(msg->key), msg->key_len);
      }
      if (msg->payload != nullptr) {
        record.value.assign(static_cast<const char*>(msg->payload), msg->len);
      }
      record.timestamp_ms = rd_kafka_message_timestamp(msg, nullptr);
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          record.headers.emplace_back(
              name, value == nullptr
                        ? std::string()
                        : std::string(static_cast<const char*>(value), size));
        }
      }
      records.push_back(std::move(record));
    } else {
      last_error = rd_kafka_message_errstr(msg);
    }
    rd_kafka_message_destroy(msg);
  }
  rd_kafka_consumer_close(rk);
  if (records.size() < count) {
    return absl::DeadlineExceededError(absl::StrCat(
        "read ", records.size(), " of ", count, " records of ", topic, " at ", bootstrap,
        " within ", timeout.count(), " ms; last consumer error: ", last_error));
  }
  return records;
}

absl::StatusOr<std::vector<ConsumedRecord>> ConsumeToEnd(
    const std::string& bootstrap, const std::string& topic,
    const std::vector<int32_t>& partitions, std::chrono::milliseconds timeout) {
  absl::StatusOr<ConfPtr> conf = MakeConf({{"bootstrap.servers", bootstrap}});
  if (!conf.ok()) return conf.status();
  absl::StatusOr<KafkaPtr> client = MakeClient(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!client.ok()) return client.status();
  size_t count = 0;
  for (int32_t partition : partitions) {
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(client->get(), topic.c_str(), partition, &low,
                                         &high, static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaErrorStatus(err, absl::StrCat("watermarks of ", topic, "/", partition));
    }
    count += static_cast<size_t>(high - low);
  }
  return ConsumeRecords(bootstrap, topic, partitions, count, timeout);
}

absl::StatusOr<std::vector<std::string>> ConsumeFromBeginning(
    const std::string& bootstrap, const std::string& topic, int32_t partition,
    size_t count, std::chrono::milliseconds timeout) {
  auto records = ConsumeRecords(bootstrap, topic, {partition}, count, timeout);
  if (!records.ok()) return records.status();
  std::vector<std::string> values;
  for (ConsumedRecord& r : *records) values.push_back(std::move(r.value));
  return values;
}

}  // namespace ferry::testing
