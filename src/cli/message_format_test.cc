#include "cli/message_format.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace ferry::cli {
namespace {

TEST(IsValidUtf8, AcceptsTextAndRejectsMalformedSequences) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("gr\xC3\xBC\xC3\x9F \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // Truncated.
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // Overlong '/'.
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // Surrogate U+D800.
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // Above U+10FFFF.
}

TEST(FormatJson, WritesEveryFieldInOrderOnOneLine) {
  client::ReceivedMessage message;
  message.topic = "orders";
  message.partition = 3;
  message.offset = 42;
  message.key = "k";
  message.value = "line1\n\"quoted\"\t\x01";
  message.headers = {{"h", "v"}};
  message.publish_time =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  message.delivery_attempt = 2;
  EXPECT_EQ(FormatJson(message),
            R"({"topic":"orders","partition":3,"offset":42,"key":"k",)"
            R"("value":"line1\n\"quoted\"\t\u0001","headers":[{"key":"h","value":"v"}],)"
            R"("timestamp":"2023-11-14T22:13:20.123Z","attempt":2})");
}

TEST(FormatJson, EncodesBytesThatAreNotUtf8AsBase64AndMissingTimeAsNull) {
  client::ReceivedMessage message;
  message.topic = "t";
  message.key = "";
  message.value = std::string("\xFF\x00\x01", 3);
  message.headers = {{"bin", std::string("\xC3", 1)}};
  EXPECT_EQ(FormatJson(message),
            R"({"topic":"t","partition":-1,"offset":-1,"key":"","value_base64":"/wAB",)"
            R"("headers":[{"key":"bin","value_base64":"ww=="}],"timestamp":null,)"
            R"("attempt":1})");
}

}  // namespace
}  // namespace ferry::cli
