#include "testing/test_certificates.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "testing/process.h"

namespace ferry::testing {

absl::StatusOr<std::unique_ptr<TestCertificates>> TestCertificates::Create(
    const std::string& ca_name) {
  std::string dir = absl::StrCat(P_tmpdir, "/ferry-pki-", getpid(), "-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, "create a directory for test certificates");
  }
  std::unique_ptr<TestCertificates> pki(new TestCertificates(dir));
  pki->ca_cert_ = dir + "/ca.pem";
  pki->ca_key_ = dir + "/ca.key";
  if (absl::Status s =
          pki->Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=" + ca_name, "-keyout", pki->ca_key_, "-out", pki->ca_cert_});
      !s.ok()) {
    return s;
  }
  return pki;
}

TestCertificates::~TestCertificates() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::Status TestCertificates::Run(const std::vector<std::string>& argv) const {
  auto result = RunProcess(argv, {}, absl::Seconds(30));
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(
        fmt::format("{} failed: {}", fmt::join(argv, " "), result->err));
  }
  return absl::OkStatus();
}

absl::StatusOr<IssuedCertificate> TestCertificates::Issue(
    const std::string& common_name, const std::vector<std::string>& sans) {
  const std::string stem = fmt::format("{}/issued-{}", dir_, issued_++);
  IssuedCertificate issued{.cert = stem + ".pem", .key = stem + ".key"};
  const std::string csr = stem + ".csr";
  const std::string extensions = stem + ".ext";
  std::ofstream(extensions) << (sans.empty() ? ""
                                             : fmt::format("subjectAltName={}\n",
                                                           fmt::join(sans, ",")));
  if (absl::Status s = Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-subj",
                            "/CN=" + common_name, "-keyout", issued.key, "-out", csr});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Run({"openssl", "x509", "-req", "-in", csr, "-CA", ca_cert_,
                            "-CAkey", ca_key_, "-CAcreateserial", "-days", "2", "-out",
                            issued.cert, "-extfile", extensions});
      !s.ok()) {
    return s;
  }
  return issued;
}

}  // namespace ferry::testing
