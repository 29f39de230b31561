#pragma once

// A throwaway certificate authority for TLS tests, generated with the
// openssl CLI when a test runs: no key is ever committed.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::testing {

// PEM files of one issued certificate.
struct IssuedCertificate {
  std::string cert;  // path
  std::string key;   // path
};

class TestCertificates {
 public:
  // Creates a CA (EC P-256) named `ca_name` in a fresh temp directory,
  // removed with this object.
  static absl::StatusOr<std::unique_ptr<TestCertificates>> Create(
      const std::string& ca_name = "ferry test CA");
  ~TestCertificates();

  // The CA certificate (PEM path), what clients and servers trust.
  const std::string& ca_cert() const { return ca_cert_; }

  // Issues a certificate with subject CN `common_name` and the given
  // subjectAltNames (e.g. {"DNS:localhost", "IP:127.0.0.1"}), valid for two
  // days. Each call makes a new key.
  absl::StatusOr<IssuedCertificate> Issue(const std::string& common_name,
                                          const std::vector<std::string>& sans = {});

  // A server certificate for 127.0.0.1 and localhost.
  absl::StatusOr<IssuedCertificate> IssueServer(
      const std::string& common_name = "ferryd") {
    return Issue(common_name, {"DNS:localhost", "IP:127.0.0.1"});
  }

 private:
  explicit TestCertificates(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Run(const std::vector<std::string>& argv) const;

  std::string dir_;
  std::string ca_cert_;
  std::string ca_key_;
  int issued_ = 0;
};

}  // namespace ferry::testing
