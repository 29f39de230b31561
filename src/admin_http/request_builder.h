#pragma once

// Builds an Admin request message from an HTTP call: the body in gRPC's JSON
// mapping (protobuf's JsonStringToMessage, unknown fields refused), then the
// fields the path names, then query parameters (`?cluster=a`). A field may
// come from one place only, so the URL never silently overrides the body.

#include <string_view>

#include "absl/status/status.h"
#include "admin_http/http_exchange.h"

namespace google::protobuf {
class Message;
}

namespace ferry::admin_http {

// Fills `request` (empty, of the method's input type). An empty body is the
// empty message. With `body_field`, the body is that message field of
// `request` instead of the whole of it. Query parameters name fields by their
// proto or JSON name and set scalars, enums (by name or number) and repeated
// scalars (one value per occurrence). INVALID_ARGUMENT naming the place:
//   request body: <protobuf's parse error>
//   query parameter "partitions": "three" is not an integer
//   query parameter "nope": ferry.v1.ListTopicsRequest has no such field
absl::Status BuildRequest(std::string_view body, std::string_view body_field,
                          const QueryParams& path_fields, const QueryParams& query,
                          google::protobuf::Message& request);

}  // namespace ferry::admin_http
