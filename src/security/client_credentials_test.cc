#include "security/client_credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::security {
namespace {

using ::testing::HasSubstr;

std::string Error(const ClientSecurity& security) {
  auto credentials = ClientCredentials(security);
  EXPECT_FALSE(credentials.ok());
  return std::string(credentials.status().message());
}

TEST(ClientCredentials, PlainTextAndSystemRootsNeedNoFiles) {
  EXPECT_TRUE(ClientCredentials({}).ok());
  EXPECT_TRUE(ClientCredentials({.tls = true, .token = "t"}).ok());
}

TEST(ClientCredentials, ATokenNeverTravelsInClearText) {
  EXPECT_THAT(Error({.token = "secret"}), HasSubstr("a token needs TLS"));
  EXPECT_THAT(Error({.token = "secret"}), ::testing::Not(HasSubstr("secret")));
}

TEST(ClientCredentials, BadFilesAreNamed) {
  EXPECT_THAT(Error({.ca_file = "/nonexistent/ca.pem"}),
              HasSubstr("CA file \"/nonexistent/ca.pem\": cannot read"));
  EXPECT_THAT(Error({.cert_file = "/c.pem"}), HasSubstr("needs its key file"));
}

}  // namespace
}  // namespace ferry::security
