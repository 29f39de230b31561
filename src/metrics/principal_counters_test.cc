#include "metrics/principal_counters.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Given a bound of two principals, when four publish, then the first two
// have their own series and the others are counted under "other".
TEST(PrincipalCounters, PrincipalsPastTheBoundShareOther) {
  Registry registry;
  PrincipalCounters counters(&registry, "ferry_principal_test_total", "Test.", 2);
  counters.For("tenant-a").Inc(3);
  counters.For("tenant-b").Inc();
  counters.For("tenant-c").Inc(2);
  counters.For("tenant-d").Inc(5);
  counters.For("tenant-a").Inc();  // a named one stays named
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("ferry_principal_test_total{principal=\"tenant-a\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("ferry_principal_test_total{principal=\"tenant-b\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ferry_principal_test_total{principal=\"other\"} 7\n"));
  EXPECT_THAT(text, Not(HasSubstr("tenant-c")));
  EXPECT_THAT(text, Not(HasSubstr("tenant-d")));
}

TEST(PrincipalCounters, ABoundOfZeroCountsEveryoneAsOther) {
  Registry registry;
  PrincipalCounters counters(&registry, "ferry_principal_test_total", "Test.", 0);
  counters.For("tenant-a").Inc();
  EXPECT_EQ(&counters.For("tenant-b"), &counters.For("tenant-a"));
  EXPECT_THAT(registry.Render(),
              HasSubstr("ferry_principal_test_total{principal=\"other\"} 1\n"));
}

}  // namespace
}  // namespace ferry::metrics
