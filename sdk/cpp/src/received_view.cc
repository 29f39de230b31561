// ReceivedView::Copy: a view's fields into an owning ReceivedMessage. Apart
// from the batch machinery, so the decoder's tests and drivers need no gRPC.
#include <string>

#include "ferry/client/subscriber.h"

namespace ferry::client {

ReceivedMessage ReceivedView::Copy() const {
  ReceivedMessage copy{.topic = std::string(topic),
                       .partition = partition,
                       .offset = offset,
                       .key = std::string(key),
                       .value = std::string(value),
                       .publish_time = publish_time,
                       .delivery_attempt = delivery_attempt,
                       .cluster = std::string(cluster),
                       .id = std::string(id)};
  copy.headers.reserve(headers.size());
  for (const HeaderView& header : headers) {
    copy.headers.push_back(Header{std::string(header.key), std::string(header.value)});
  }
  return copy;
}

}  // namespace ferry::client
