#pragma once

#include <gmock/gmock.h>

#include <map>
#include <string>

#include "backend/fake_cluster.h"

namespace ferry::publish {

// A cluster for publish-path unit tests whose topic administration is
// mocked (tests script lookups that block or fail); everything else is the
// in-memory FakeCluster.
class AdminOnlyCluster : public backend::FakeCluster {
 public:
  explicit AdminOnlyCluster(std::string name) : FakeCluster(std::move(name)) {}
  MOCK_METHOD(absl::StatusOr<backend::TopicInfo>, DescribeTopic, (const std::string&),
              (override));
  MOCK_METHOD(absl::Status, CreateTopic,
              (const std::string&, int, int, (const std::map<std::string, std::string>&)),
              (override));
};

}  // namespace ferry::publish
