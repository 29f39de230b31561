#pragma once

#include <google/protobuf/message.h>

#include <utility>
#include <vector>

#include "security/acl_rule.h"

namespace ferry::security {

using Access = std::pair<Operation, Resource>;

// What a request to ferryd's gRPC API does, from its message type (every RPC
// has its own request type) and its topic/group fields: e.g. SeekRequest
// {group: "g"} is seek on group:g; PublishRequest {topic: "t"} publish on
// topic:t; SubscribeRequest with `open` subscribe on its group and on each of
// its topics (acks and flow control on an open stream need nothing more).
// A request type missing from the table needs admin on `admin`, so an RPC
// added later is closed until it is mapped. The HTTP API calls the same
// Admin methods, so its routes map to the same operations.
std::vector<Access> RequiredAccess(const google::protobuf::Message& request);

}  // namespace ferry::security
