#include "common/topic_name.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry {
namespace {

using ::testing::HasSubstr;

std::string Error(std::string_view topic) {
  return std::string(ValidateTopicName(topic).message());
}

TEST(TopicName, AcceptsKafkaLegalNames) {
  EXPECT_TRUE(ValidateTopicName("orders.eu-1_v2").ok());
  EXPECT_TRUE(ValidateTopicName(std::string(249, 'a')).ok());
}

TEST(TopicName, RejectsWithAPreciseReason) {
  EXPECT_EQ(Error(""), "topic name is empty");
  EXPECT_THAT(Error(std::string(250, 'a')), HasSubstr("longer than 249"));
  EXPECT_THAT(Error(".."), HasSubstr("not allowed"));
  EXPECT_THAT(Error("a b"), HasSubstr("character ' ' at position 1 is not allowed"));
  EXPECT_THAT(Error("orders/eu"), HasSubstr("'/' at position 6"));
}

TEST(TopicGlob, AllowsWildcardsButNothingATopicCannotHold) {
  EXPECT_TRUE(ValidateTopicGlob("orders.*").ok());
  EXPECT_TRUE(ValidateTopicGlob("t?-*").ok());
  EXPECT_THAT(std::string(ValidateTopicGlob("orders/*").message()),
              HasSubstr("topic glob \"orders/*\": character '/' at position 6 is not "
                        "allowed (use a-z A-Z 0-9 . _ - * ?)"));
  EXPECT_THAT(std::string(ValidateTopicName("orders.*").message()),
              HasSubstr("character '*' at position 7"));
}

}  // namespace
}  // namespace ferry
