#include "backend/kafka/client_factory.h"

#include <fmt/format.h>

#include "absl/status/status.h"

namespace ferry::backend::kafka {

absl::StatusOr<RdKafkaConfPtr> BuildConf(const Properties& properties,
                                         std::string_view key_prefix) {
  RdKafkaConfPtr conf(rd_kafka_conf_new());
  char error[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(fmt::format("{}{}: {}", key_prefix, key, error));
    }
  }
  return conf;
}

absl::StatusOr<RdKafkaPtr> LibrdkafkaClientFactory::Create(rd_kafka_type_t type,
                                                           RdKafkaConfPtr conf) {
  char error[512];
  // rd_kafka_new takes ownership of the conf only on success.
  rd_kafka_t* handle = rd_kafka_new(type, conf.get(), error, sizeof(error));
  if (handle == nullptr) {
    return absl::InvalidArgumentError(fmt::format("librdkafka: {}", error));
  }
  conf.release();
  return RdKafkaPtr(handle);
}

}  // namespace ferry::backend::kafka
