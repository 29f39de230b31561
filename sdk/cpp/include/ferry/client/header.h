// ferry::client::Header: a record header, shared by the publisher and the
// subscriber APIs.
#ifndef FERRY_CLIENT_HEADER_H_
#define FERRY_CLIENT_HEADER_H_

#include <string>

namespace ferry::client {

// A record header. Keys may repeat; order is preserved.
struct Header {
  std::string key{};
  std::string value{};
};

}  // namespace ferry::client

#endif  // FERRY_CLIENT_HEADER_H_
