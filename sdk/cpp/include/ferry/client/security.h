// ferry::client::Security: how the publisher and the subscriber authenticate
// the nodes and themselves, shared by both builders.
//
//   ferry::client::Publisher::Builder()
//       .Endpoints({"ferry-1:7400"})
//       .Security({.ca_file = "/etc/ferry/ca.pem", .token = token_from_vault})
//       .Build(&error);
#ifndef FERRY_CLIENT_SECURITY_H_
#define FERRY_CLIENT_SECURITY_H_

#include <string>

namespace ferry::client {

// Files are PEM and read once, by Build(); Build() fails naming an unreadable
// one. Everything empty: plain text (nodes on loopback only).
struct Security {
  // TLS with the system's CAs; implied by any file below.
  bool tls = false;
  // CAs the nodes' certificates must chain to; empty: the system's.
  std::string ca_file{};
  // Client certificate and its key, for nodes with mutual TLS.
  std::string cert_file{};
  std::string key_file{};
  // Sent as "authorization: Bearer <token>" on every call; needs TLS.
  std::string token{};
};

}  // namespace ferry::client

#endif  // FERRY_CLIENT_SECURITY_H_
