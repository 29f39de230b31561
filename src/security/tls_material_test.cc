#include "security/tls_material.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "testing/test_certificates.h"
#include "testing/test_dir.h"

namespace ferry::security {
namespace {

using ::testing::HasSubstr;

class TlsMaterialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = ferry::testing::TestCertificates::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto server = pki_->IssueServer();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
  }

  std::string Error(const config::TlsConfig& tls) {
    auto material = TlsMaterial::Load(tls);
    EXPECT_FALSE(material.ok());
    return std::string(material.status().message());
  }

  std::unique_ptr<ferry::testing::TestCertificates> pki_;
  ferry::testing::IssuedCertificate server_;
};

TEST_F(TlsMaterialTest, LoadsAMatchingCertificateAndKey) {
  auto material = TlsMaterial::Load(
      {.cert = server_.cert, .key = server_.key, .client_ca = pki_->ca_cert()});
  ASSERT_TRUE(material.ok()) << material.status();
}

TEST_F(TlsMaterialTest, AKeyOfAnotherCertificateIsRefused) {
  auto other = pki_->IssueServer("other");
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(Error({.cert = server_.cert, .key = other->key}),
              HasSubstr("listen.tls.key: \"" + other->key +
                        "\" is not the key of the certificate"));
}

TEST_F(TlsMaterialTest, MissingAndEmptyFilesAreNamed) {
  EXPECT_THAT(Error({.cert = "/nonexistent.pem", .key = server_.key}),
              HasSubstr("listen.tls.cert: cannot read \"/nonexistent.pem\""));
  ferry::testing::TestDir dir;
  const std::string empty = dir.Sub("empty.pem");
  std::ofstream(empty) << "not a certificate\n";
  EXPECT_THAT(Error({.cert = empty, .key = server_.key}),
              HasSubstr("listen.tls.cert: \"" + empty + "\" holds no PEM certificate"));
  EXPECT_THAT(Error({.cert = server_.cert, .key = empty}),
              HasSubstr("listen.tls.key: \"" + empty + "\" holds no PEM private key"));
  EXPECT_THAT(
      Error({.cert = server_.cert, .key = server_.key, .client_ca = empty}),
      HasSubstr("listen.tls.client_ca: \"" + empty + "\" holds no PEM certificate"));
}

}  // namespace
}  // namespace ferry::security
