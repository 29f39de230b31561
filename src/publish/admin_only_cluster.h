#pragma once

#include <gmock/gmock.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cluster.h"
#include "backend/group_member.h"

namespace ferry::publish {

// A cluster for publish-path unit tests: topic administration is mocked,
// Publish does nothing (and must not be reached where it is used), the rest
// is unimplemented.
class AdminOnlyCluster : public backend::Cluster {
 public:
  explicit AdminOnlyCluster(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  std::string_view type() const override { return "test"; }
  const std::string& bootstrap() const override { return name_; }
  backend::ClusterStatus Status() const override { return {}; }
  backend::ClusterStatus Describe(bool) override { return {}; }
  void Publish(backend::Record, backend::PublishCallback) override {}
  MOCK_METHOD(absl::StatusOr<backend::TopicInfo>, DescribeTopic, (const std::string&),
              (override));
  MOCK_METHOD(absl::Status, CreateTopic,
              (const std::string&, int, int, (const std::map<std::string, std::string>&)),
              (override));
  absl::Status DeleteTopic(const std::string&) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<backend::GroupMember>> JoinGroup(
      const backend::GroupMemberOptions&, backend::GroupMemberListener*) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::map<backend::TopicPartition, int64_t>> CommittedOffsets(
      const std::string&, const std::vector<std::string>&) override {
    return absl::UnimplementedError("");
  }
  absl::Status AlterCommittedOffsets(
      const std::string&, const std::map<backend::TopicPartition, int64_t>&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::map<backend::TopicPartition, int64_t>> OffsetsForTime(
      const std::string&, int64_t) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::vector<std::string>> ListGroups() override {
    return absl::UnimplementedError("");
  }

 private:
  const std::string name_;
};

}  // namespace ferry::publish
