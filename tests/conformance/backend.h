#pragma once

// The backends the conformance suite runs against, behind one interface: each
// knows the ferryd YAML that points a node at it and which behaviours it can
// show. Test bodies only talk to ferryd (Admin, Publisher, Subscriber); the
// backend-specific code lives here, in set-up and fault injection.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ferry::testing {
class MockKafkaCluster;
}

namespace ferry::conformance {

enum class BackendKind { kKafka, kEmbedded, kKafkaMock };

std::string_view BackendName(BackendKind kind);

// What a backend can show through ferryd. A test needing a capability the
// backend lacks skips with `reason`, so every difference is listed in the
// test output.
enum class Capability {
  // Admin.CreateTopic creates the topic on the backend.
  kAdminCreateTopic,
  // Publishing to / subscribing to a topic that does not exist is NOT_FOUND.
  kUnknownTopicNotFound,
  // Consumer groups: Subscribe delivers, acks commit, a new stream resumes
  // from the committed offsets.
  kSubscribe,
  // The publish result carries the record's own timestamp.
  kResultTimestamp,
  // Admin.Seek of a live group to the earliest offset.
  kSeek,
  // Admin.Seek of a live group to a timestamp (ListOffsets by time).
  kSeekToTimestamp,
  // Admin.PauseGroup / ResumeGroup (through the control topic).
  kPauseResume,
  // Taking a broker down and up again from the test.
  kBrokerFaults,
};

struct Support {
  bool supported = false;
  // Why not (empty when supported).
  std::string reason = {};
};

class Backend {
 public:
  static std::unique_ptr<Backend> Create(BackendKind kind);
  virtual ~Backend() = default;

  virtual BackendKind kind() const = 0;
  std::string_view name() const { return BackendName(kind()); }

  // Brings the backend up for one test (Kafka: the binary's shared broker;
  // embedded: a fresh store directory; mock: a fresh mock cluster).
  virtual absl::Status SetUp() = 0;

  // The `clusters:` section for a node; the one cluster is always named
  // "main", so results name the same cluster on every backend. Nodes of one
  // test share the backend (embedded: one node at a time).
  virtual std::string ClustersYaml() const = 0;

  virtual Support Supports(Capability capability) const = 0;

  // Backends without Admin.CreateTopic (kAdminCreateTopic unsupported) get
  // their topics here instead; the others return UNIMPLEMENTED.
  virtual absl::Status ProvisionTopic(const std::string& topic, int partitions);

  // Fault injection (kBrokerFaults): the cluster's only broker goes down / up.
  virtual void SetBrokerDown(bool down);
};

}  // namespace ferry::conformance
