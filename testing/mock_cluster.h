#pragma once

// librdkafka's in-process mock Kafka cluster, for fast tests that need fault
// injection rather than a real broker.
//
// Keep mock tests small: Debian's librdkafka 2.0.2 mock stalls fetches once a
// partition holds more than ~5 MB.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::testing {

// Kafka protocol API keys for PushRequestErrors (librdkafka's public headers
// do not name them).
inline constexpr int16_t kProduceApiKey = 0;
inline constexpr int16_t kFetchApiKey = 1;
inline constexpr int16_t kListOffsetsApiKey = 2;
inline constexpr int16_t kMetadataApiKey = 3;

// Owns a mock cluster (brokers with ids 1..N listening on 127.0.0.1, served
// by a librdkafka background thread) and the otherwise idle client handle it
// hangs off. All methods may be called from any thread, also while clients
// are connected; destroying the cluster disconnects them.
class MockKafkaCluster {
 public:
  static absl::StatusOr<std::unique_ptr<MockKafkaCluster>> Start(int brokers = 1);

  MockKafkaCluster(const MockKafkaCluster&) = delete;
  MockKafkaCluster& operator=(const MockKafkaCluster&) = delete;
  ~MockKafkaCluster();

  // Comma-separated "127.0.0.1:<port>" list of all mock brokers.
  std::string bootstrap() const;

  // Error codes are mapped as in KafkaErrorStatus (testing/kafka_client.h).
  absl::Status CreateTopic(const std::string& topic, int partitions, int replication = 1);

  // down=true drops the broker's connections and refuses new ones (partition
  // leadership does not move); down=false lets it accept connections again.
  // An unknown broker_id records a gtest failure.
  void SetBrokerDown(int32_t broker_id, bool down);

  // The next errs.size() requests with this API key (e.g. kProduceApiKey),
  // to any broker, fail with these errors in order.
  void PushRequestErrors(int16_t api_key, std::vector<rd_kafka_resp_err_t> errs);

  // The next `count` requests with this API key to broker `broker_id` are
  // answered (without error) only after `delay`; the broker's later answers
  // on the same connection wait behind them.
  void StallRequests(int32_t broker_id, int16_t api_key, int count, absl::Duration delay);

  rd_kafka_mock_cluster_t* raw() const { return cluster_; }

 private:
  MockKafkaCluster(rd_kafka_t* handle, rd_kafka_mock_cluster_t* cluster);

  rd_kafka_t* handle_;
  rd_kafka_mock_cluster_t* cluster_;
};

}  // namespace ferry::testing
