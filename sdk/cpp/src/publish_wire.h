// The wire forms of a PublishRequest and a PublishResponse, by hand.
//
// Requests: each message is encoded
// once, at Publish, into its Pending record, and a request is its header plus
// those encodings back to back (a PublishRequest's `messages` field repeated),
// with no OutgoingMessage or PublishRequest object in between. The bytes are
// those the generated serializer writes (fields in number order, defaults
// left out), so ferryd's parser reads them unchanged.
//
// Responses: read in place into views of the response's bytes, without a
// PublishResult object and its strings per message.
#ifndef FERRY_CLIENT_SRC_PUBLISH_WIRE_H_
#define FERRY_CLIENT_SRC_PUBLISH_WIRE_H_

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/client/publisher.h"
#include "many_part.h"
#include "pending.h"

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

// The same for a Message (Publish).
inline std::size_t MessageFieldSize(const Message& message, std::string_view id) {
  return MessageFieldSize(ViewOf(message), id);
}
inline char* WriteMessageField(const Message& message, std::string_view id, char* out) {
  return WriteMessageField(ViewOf(message), id, out);
}

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

// One ferry.v1.PublishResult, viewing the bytes it was read from.
struct ResultView {
  int code = 0;                 // status.code
  std::string_view error;       // status.message
  bool retryable = false;       // status.retryable
  uint32_t retry_after_ms = 0;  // status.retry_after_ms: the node's hint, 0 none
  std::string_view cluster;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string_view id;
};

// A PublishResponse's results, in order: its PublishResults, or, when the
// node answered in the compact form, an OK view per message (cluster,
// partition and offset; no id). The views point into *storage
// (which keeps the bytes when `response` is not one flat slice) or into
// `response`'s slices; both must outlive them. False when the bytes are not
// a well-formed PublishResponse (fields this SDK does not know are skipped,
// as the generated parser does).
bool ReadResults(const grpc::ByteBuffer& response, std::string* storage,
                 std::vector<ResultView>* results);

}  // namespace ferry::client::internal

#endif  // FERRY_CLIENT_SRC_PUBLISH_WIRE_H_
