#include "security/tls_reloader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "testing/test_certificates.h"
#include "testing/test_dir.h"

namespace ferry::security {
namespace {

namespace fs = std::filesystem;

// Given a listener's files, when they are replaced, then the next handshake
// after the refresh interval uses the new ones, unless they are unusable.
class TlsReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = ferry::testing::TestCertificates::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto first = pki_->IssueServer();
    ASSERT_TRUE(first.ok());
    tls_ = {.cert = dir_.Sub("cert.pem"),
            .key = dir_.Sub("key.pem"),
            .refresh_interval = absl::ZeroDuration()};
    Install(*first);
  }

  // A reloader on the fixture's files and the material it loaded first.
  std::pair<std::unique_ptr<TlsReloader>, std::shared_ptr<const TlsMaterial>> Started() {
    auto reloader = TlsReloader::Start(tls_);
    EXPECT_TRUE(reloader.ok()) << reloader.status();
    if (!reloader.ok()) return {};
    auto first = (*reloader)->Current();
    return {*std::move(reloader), first};
  }

  ferry::testing::IssuedCertificate Rotated() {
    auto issued = pki_->IssueServer("rotated");
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *issued : ferry::testing::IssuedCertificate{};
  }

  void Install(const ferry::testing::IssuedCertificate& issued) {
    fs::copy_file(issued.cert, tls_.cert, fs::copy_options::overwrite_existing);
    fs::copy_file(issued.key, tls_.key, fs::copy_options::overwrite_existing);
  }

  ferry::testing::TestDir dir_;
  std::unique_ptr<ferry::testing::TestCertificates> pki_;
  config::TlsConfig tls_;
};

TEST_F(TlsReloaderTest, UnchangedFilesKeepTheLoadedMaterial) {
  auto [reloader, first] = Started();
  ASSERT_NE(reloader, nullptr);
  EXPECT_EQ(reloader->Current(), first);
}

TEST_F(TlsReloaderTest, ReplacedFilesAreLoadedForTheNextHandshake) {
  auto [reloader, first] = Started();
  ASSERT_NE(reloader, nullptr);
  Install(Rotated());
  EXPECT_NE(reloader->Current(), first);
}

TEST_F(TlsReloaderTest, AHalfWrittenRotationKeepsThePreviousMaterial) {
  auto [reloader, first] = Started();
  ASSERT_NE(reloader, nullptr);
  const ferry::testing::IssuedCertificate second = Rotated();
  // The new certificate has arrived, its key not yet.
  fs::copy_file(second.cert, tls_.cert, fs::copy_options::overwrite_existing);
  EXPECT_EQ(reloader->Current(), first);
  fs::copy_file(second.key, tls_.key, fs::copy_options::overwrite_existing);
  EXPECT_NE(reloader->Current(), first);
}

TEST_F(TlsReloaderTest, ChecksFilesAtMostOncePerInterval) {
  tls_.refresh_interval = absl::Hours(1);
  auto [reloader, first] = Started();
  ASSERT_NE(reloader, nullptr);
  Install(Rotated());
  EXPECT_EQ(reloader->Current(), first);
}

}  // namespace
}  // namespace ferry::security
