#include "security/access_map.h"

#include <google/protobuf/descriptor.h>

#include <map>
#include <string>
#include <string_view>

namespace ferry::security {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// One check: `operation` on the resource named by `field` (a string or
// repeated string field; empty for cluster and admin). A field of a
// sub-message is written "open.group".
struct Rule {
  Operation operation;
  ResourceKind kind;
  std::string_view field;
};

const std::map<std::string_view, std::vector<Rule>>& Table() {
  using Op = Operation;
  using Kind = ResourceKind;
  static const auto* table = new std::map<std::string_view, std::vector<Rule>>{
      {"ferry.v1.PublishRequest", {{Op::kPublish, Kind::kTopic, "topic"}}},
      {"ferry.v1.SubscribeRequest",
       {{Op::kSubscribe, Kind::kGroup, "open.group"},
        {Op::kSubscribe, Kind::kTopic, "open.topics"}}},
      {"ferry.v1.GetNodeRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.ListNodesRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.ListClustersRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.DrainClusterRequest", {{Op::kAdmin, Kind::kCluster, ""}}},
      {"ferry.v1.UndrainClusterRequest", {{Op::kAdmin, Kind::kCluster, ""}}},
      {"ferry.v1.ListTopicsRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.CreateTopicRequest", {{Op::kAdmin, Kind::kTopic, "name"}}},
      {"ferry.v1.DescribeTopicRequest", {{Op::kDescribe, Kind::kTopic, "name"}}},
      {"ferry.v1.DeleteTopicRequest", {{Op::kAdmin, Kind::kTopic, "name"}}},
      // Message contents: as much as reading the topic.
      {"ferry.v1.ListLatestMessagesRequest", {{Op::kSubscribe, Kind::kTopic, "name"}}},
      {"ferry.v1.ListGroupsRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.DescribeGroupRequest", {{Op::kDescribe, Kind::kGroup, "group"}}},
      {"ferry.v1.SeekRequest", {{Op::kSeek, Kind::kGroup, "group"}}},
      {"ferry.v1.PauseGroupRequest", {{Op::kPause, Kind::kGroup, "group"}}},
      {"ferry.v1.ResumeGroupRequest", {{Op::kPause, Kind::kGroup, "group"}}},
      {"ferry.v1.SetGroupFilterRequest", {{Op::kAdmin, Kind::kGroup, "group"}}},
      {"ferry.v1.ListRoutesRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.ListMirrorsRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.GetMirrorStatusRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.TranslateOffsetsRequest", {{Op::kDescribe, Kind::kGroup, "group"}}},
      {"ferry.v1.GetMigrationRequest", {{Op::kDescribe, Kind::kTopic, "topic"}}},
      // Every topic's: as much as ListTopics.
      {"ferry.v1.ListMigrationsRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      // Like Kafka's DescribeAcls (describe on the cluster); changing rules
      // needs admin on admin.
      {"ferry.v1.ListAclsRequest", {{Op::kDescribe, Kind::kCluster, ""}}},
      {"ferry.v1.AddAclRequest", {{Op::kAdmin, Kind::kAdmin, ""}}},
      {"ferry.v1.RemoveAclRequest", {{Op::kAdmin, Kind::kAdmin, ""}}},
      // Every SDK asks for its pushed settings (no topics: any authenticated
      // client may), and a publisher for the cluster it may publish its
      // topics to directly when no node answers (fallback): as much as
      // publishing them.
      {"ferry.v1.GetClientConfigRequest", {{Op::kPublish, Kind::kTopic, "topics"}}},
  };
  return *table;
}

// The values of `path` ("a" or "a.b") in `message`: one for a string field,
// each for a repeated one, none when a sub-message on the way is unset.
std::vector<std::string> Values(const Message& message, std::string_view path) {
  const size_t dot = path.find('.');
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  const FieldDescriptor* field =
      descriptor->FindFieldByName(std::string(path.substr(0, dot)));
  if (field == nullptr) return {};
  if (dot != std::string_view::npos) {
    if (field->type() != FieldDescriptor::TYPE_MESSAGE || field->is_repeated() ||
        !reflection->HasField(message, field)) {
      return {};
    }
    return Values(reflection->GetMessage(message, field), path.substr(dot + 1));
  }
  if (field->type() != FieldDescriptor::TYPE_STRING) return {};
  if (!field->is_repeated()) return {reflection->GetString(message, field)};
  std::vector<std::string> values;
  for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
    values.push_back(reflection->GetRepeatedString(message, field, i));
  }
  return values;
}

}  // namespace

std::vector<Access> RequiredAccess(const Message& request) {
  auto it = Table().find(request.GetDescriptor()->full_name());
  if (it == Table().end()) {
    return {{Operation::kAdmin, Resource{.kind = ResourceKind::kAdmin}}};
  }
  std::vector<Access> required;
  for (const Rule& rule : it->second) {
    if (rule.field.empty()) {
      required.push_back({rule.operation, Resource{.kind = rule.kind}});
      continue;
    }
    std::vector<std::string> names = Values(request, rule.field);
    for (std::string& name : names) {
      required.push_back(
          {rule.operation, Resource{.kind = rule.kind, .name = std::move(name)}});
    }
  }
  return required;
}

}  // namespace ferry::security
