#include "security/token_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::security {
namespace {

using ::testing::HasSubstr;

constexpr char kSecret[] = "0123456789abcdef0123";
constexpr char kSalt[] = "salt-0123456";
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

std::string Error(std::string_view content) {
  auto table = TokenTable::Parse(content);
  EXPECT_FALSE(table.ok());
  return std::string(table.status().message());
}

TEST(TokenTable, AuthenticatesTheTokenOfALine) {
  const std::string file =
      "# tokens\n\n" +
      TokenLine("ci", "tenant-a", kSecret, kSalt, absl::InfiniteFuture()) + "\n";
  auto table = TokenTable::Parse(file);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 1u);
  auto principal = table->Authenticate(std::string("ci.") + kSecret, kNow);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(*principal, "tenant-a");
  // The file holds no secret.
  EXPECT_THAT(file, ::testing::Not(HasSubstr(kSecret)));
}

TEST(TokenTable, WrongUnknownMalformedAndExpiredTokensSayOnlyThat) {
  const absl::Time expires = kNow + absl::Hours(1);
  auto table = TokenTable::Parse(TokenLine("ci", "tenant-a", kSecret, kSalt, expires));
  ASSERT_TRUE(table.ok()) << table.status();
  auto wrong = table->Authenticate("ci.0123456789abcdef0124", kNow);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.status().message(), "unknown or revoked bearer token");
  EXPECT_EQ(table->Authenticate(std::string("other.") + kSecret, kNow).status().message(),
            "unknown or revoked bearer token");
  for (std::string_view malformed :
       {"", "ci", "ci.", "ci.short", "c i.0123456789abcdef0123",
        ".0123456789abcdef0123"}) {
    EXPECT_EQ(table->Authenticate(malformed, kNow).status().message(),
              "malformed bearer token")
        << malformed;
  }
  EXPECT_TRUE(
      table->Authenticate(std::string("ci.") + kSecret, expires - absl::Seconds(1)).ok());
  auto expired = table->Authenticate(std::string("ci.") + kSecret, expires);
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(expired.status().message()),
              HasSubstr("bearer token expired at"));
}

TEST(TokenTable, BadLinesAreNamedByNumber) {
  const std::string good = TokenLine("ci", "a", kSecret, kSalt, absl::InfiniteFuture());
  EXPECT_THAT(Error("\n" + good + "\nci a\n"), HasSubstr("line 3: want: ID PRINCIPAL"));
  EXPECT_THAT(Error(good + "\n" + good),
              HasSubstr("line 2: token id \"ci\" is listed twice"));
  EXPECT_THAT(Error("ci a sha256:zz:00\n"), HasSubstr("line 1: the hash is not"));
  EXPECT_THAT(Error("ci a md5:00112233445566778899:00\n"), HasSubstr("the hash is not"));
  EXPECT_THAT(Error("c/i a sha256:0011:00\n"), HasSubstr("the id is not"));
  EXPECT_THAT(Error("ci * sha256:0011:00\n"), HasSubstr("\"*\" is not a principal"));
  EXPECT_THAT(Error(good + " expires=tomorrow\n"), HasSubstr("expires=<RFC 3339 time>"));
}

}  // namespace
}  // namespace ferry::security
