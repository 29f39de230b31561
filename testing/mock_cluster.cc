#include "testing/mock_cluster.h"

#include <gtest/gtest.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "testing/kafka_client.h"

namespace ferry::testing {

absl::StatusOr<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::Start(int brokers) {
  if (brokers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("mock cluster needs at least one broker, got ", brokers));
  }
  // The handle only hosts the mock cluster's thread; it is never used to
  // produce, so it needs no bootstrap servers (log_level 4 hides the notice
  // saying so; the mock brokers' warnings and errors still show).
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  rd_kafka_conf_set(conf, "client.id", "ferry-mock-cluster", errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (handle == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("rd_kafka_new: ", errstr));
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(handle, brokers);
  if (cluster == nullptr) {
    rd_kafka_destroy(handle);
    return absl::InternalError("rd_kafka_mock_cluster_new failed");
  }
  return std::unique_ptr<MockKafkaCluster>(new MockKafkaCluster(handle, cluster));
}

MockKafkaCluster::MockKafkaCluster(rd_kafka_t* handle, rd_kafka_mock_cluster_t* cluster)
    : handle_(handle), cluster_(cluster) {}

MockKafkaCluster::~MockKafkaCluster() {
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(handle_);
}

std::string MockKafkaCluster::bootstrap() const {
  return rd_kafka_mock_cluster_bootstraps(cluster_);
}

absl::Status MockKafkaCluster::CreateTopic(const std::string& topic, int partitions,
                                           int replication) {
  return KafkaErrorStatus(
      rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, replication),
      absl::StrCat("create mock topic ", topic));
}

void MockKafkaCluster::SetBrokerDown(int32_t broker_id, bool down) {
  rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(cluster_, broker_id)
                                 : rd_kafka_mock_broker_set_up(cluster_, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ADD_FAILURE() << "set mock broker " << broker_id << (down ? " down" : " up") << ": "
                  << rd_kafka_err2name(err);
  }
}

void MockKafkaCluster::PushRequestErrors(int16_t api_key,
                                         std::vector<rd_kafka_resp_err_t> errs) {
  rd_kafka_mock_push_request_errors_array(cluster_, api_key, errs.size(), errs.data());
}

void MockKafkaCluster::StallRequests(int32_t broker_id, int16_t api_key, int count,
                                     absl::Duration delay) {
  const int delay_ms = static_cast<int>(absl::ToInt64Milliseconds(delay));
  for (int i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_mock_broker_push_request_error_rtts(
        cluster_, broker_id, api_key, 1, RD_KAFKA_RESP_ERR_NO_ERROR, delay_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ADD_FAILURE() << "stall requests of mock broker " << broker_id << ": "
                    << rd_kafka_err2str(err);
      return;
    }
  }
}

}  // namespace ferry::testing
