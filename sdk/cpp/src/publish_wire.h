// The wire forms of a PublishRequest and a PublishResponse, by hand.
//
// Requests: each message is encoded
// once, at Publish, into its Pending record, and a request is its header plus
// those encodings back to back (a PublishRequest's `messages` field repeated),
// with no OutgoingMessage or PublishRequest object in between. The bytes are
// those the generated serializer writes (fields in number order, defaults
// left out), so ferryd's parser reads them unchanged.
//
// Responses: read in place (publish_result_wire.h).
#ifndef FERRY_CLIENT_SRC_PUBLISH_WIRE_H_
#define FERRY_CLIENT_SRC_PUBLISH_WIRE_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/client/publisher.h"
#include "many_part.h"
#include "pending.h"
#include "publish_result_wire.h"

namespace ferry::client::internal {

// A view of `message`'s fields (valid while `message` is).
MessageView ViewOf(const Message& message);

// Bytes of `message` with `id` (which replaces message.id) as one entry of
// PublishRequest.messages: the field's tag and length, then the
// OutgoingMessage.
std::size_t MessageFieldSize(const MessageView& message, std::string_view id);

// Writes that entry to `out`, which has MessageFieldSize() bytes; returns the
// end of what it wrote.
char* WriteMessageField(const MessageView& message, std::string_view id, char* out);

// Bytes of a PublishRequest's fields before its messages.
std::size_t RequestHeaderSize(uint64_t request_id, std::string_view topic);

// Writes them to `out`, which has RequestHeaderSize() bytes; returns the end.
char* WriteRequestHeader(uint64_t request_id, std::string_view topic, char* out);

// Every request the SDK sends ends with compact_results = true (field 4,
// after the messages, where the generated serializer puts it): a node that
// knows the field answers a fully written batch with CompactPublishResults,
// an older one ignores it.
inline constexpr std::size_t kRequestTrailerSize = 2;

// The whole PublishRequest of `messages` (their wire(), in order) in one
// slice: one copy of each encoding, and gRPC writes a single block.
grpc::ByteBuffer EncodeRequest(uint64_t request_id, std::string_view topic,
                               const std::vector<std::unique_ptr<Pending>>& messages);

// A part of a PublishMany call: the PublishRequest (no request_id: the
// unary call ignores it) of `messages`, the call's messages from index
// `first` on, with their ids from `ids` and their field sizes
// (MessageFieldSize) in `field_sizes`, written once into the part's slice.
std::unique_ptr<ManyPart> EncodePart(std::string_view topic,
                                     std::span<const MessageView> messages,
                                     const PublishManyResult& ids, std::size_t first,
                                     std::span<const uint32_t> field_sizes);

// The request of a part's retry: its header, the fields of part.sending and
// its trailer, copied from the part's request.
grpc::ByteBuffer EncodeRetry(const ManyPart& part);

// What the views of ReadResults point into besides the response: its slices
// (a small one keeps its bytes inside the grpc::Slice) and the fields cut
// between two of them. Kept by the caller while it uses the views; reused.
struct ResponseStorage {
  std::vector<grpc::Slice> slices;
  std::vector<std::string_view> pieces;
  std::deque<std::string> spilled;
};

// The results of `response` (publish_result_wire.h), read in place from its
// slices.
bool ReadResults(const grpc::ByteBuffer& response, ResponseStorage* storage,
                 std::vector<ResultView>* results);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PUBLISH_WIRE_H_
