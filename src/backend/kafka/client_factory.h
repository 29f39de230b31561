#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ferry::backend::kafka {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* handle) const { rd_kafka_destroy(handle); }
};
struct RdKafkaConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* metadata) const {
    rd_kafka_metadata_destroy(metadata);
  }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using RdKafkaPtr = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;
using RdKafkaConfPtr = std::unique_ptr<rd_kafka_conf_t, RdKafkaConfDeleter>;
using PartitionListPtr =
    std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;

using Properties = std::map<std::string, std::string>;

// Builds a librdkafka configuration from raw properties. A property librdkafka
// rejects gives INVALID_ARGUMENT naming `<key_prefix><property>` and
// librdkafka's reason, so configuration errors point at the YAML key.
absl::StatusOr<RdKafkaConfPtr> BuildConf(const Properties& properties,
                                         std::string_view key_prefix);

// Creates librdkafka handles. The seam through which tests substitute or
// fail handle creation (the Envoy kafka-mesh pattern).
class ClientFactory {
 public:
  virtual ~ClientFactory() = default;
  // Takes ownership of `conf` whether or not creation succeeds.
  virtual absl::StatusOr<RdKafkaPtr> Create(rd_kafka_type_t type,
                                            RdKafkaConfPtr conf) = 0;
};

// The real factory: rd_kafka_new.
class LibrdkafkaClientFactory final : public ClientFactory {
 public:
  absl::StatusOr<RdKafkaPtr> Create(rd_kafka_type_t type, RdKafkaConfPtr conf) override;
};

}  // namespace ferry::backend::kafka
