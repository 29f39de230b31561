#include "common/net_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry {
namespace {

using ::testing::HasSubstr;

TEST(NetAddress, ParsesHostAndPort) {
  auto address = ParseNetAddress("127.0.0.1:7400");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->host, "127.0.0.1");
  EXPECT_EQ(address->port, 7400);
  EXPECT_EQ(address->ToString(), "127.0.0.1:7400");
}

TEST(NetAddress, ParsesBracketedIpv6) {
  auto address = ParseNetAddress("[::1]:9092");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->host, "::1");
  EXPECT_EQ(address->ToString(), "[::1]:9092");
}

TEST(NetAddress, RejectsPortOutOfRangeNamingTheInput) {
  auto address = ParseNetAddress("localhost:99999");
  ASSERT_FALSE(address.ok());
  EXPECT_THAT(std::string(address.status().message()),
              HasSubstr("port \"99999\" of \"localhost:99999\" is not in 1..65535"));
}

TEST(NetAddress, RejectsMissingPortAndEmptyHost) {
  EXPECT_THAT(std::string(ParseNetAddress("localhost").status().message()),
              HasSubstr("missing port"));
  EXPECT_THAT(std::string(ParseNetAddress(":80").status().message()),
              HasSubstr("empty host"));
  EXPECT_FALSE(ParseNetAddress("host:abc").ok());
  EXPECT_FALSE(ParseNetAddress("[::1:80").ok());
}

TEST(NetAddress, RejectsPortZero) { EXPECT_FALSE(ParseNetAddress("127.0.0.1:0").ok()); }

TEST(NetAddress, ParsesBootstrapLists) {
  auto list = ParseAddressList("a:1, b:2");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].host, "b");
  EXPECT_FALSE(ParseAddressList("a:1,,b:2").ok());
}

}  // namespace
}  // namespace ferry
