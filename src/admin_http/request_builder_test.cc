#include "admin_http/request_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ferry/v1/admin.pb.h"

namespace ferry::admin_http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The status message as a std::string, for matchers.
std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(RequestBuilder, BodyInGrpcJsonMappingTakesCamelAndProtoNames) {
  v1::CreateTopicRequest request;
  absl::Status s = BuildRequest(
      R"({"name": "orders", "partitions": 3, "replication_factor": 2,
          "configs": {"retention.ms": "1000"}})",
      "", {}, {}, request);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(request.name(), "orders");
  EXPECT_EQ(request.partitions(), 3);
  EXPECT_EQ(request.replication_factor(), 2);
  EXPECT_EQ(request.configs().at("retention.ms"), "1000");

  v1::CreateTopicRequest camel;
  ASSERT_TRUE(BuildRequest(R"({"replicationFactor": 2})", "", {}, {}, camel).ok());
  EXPECT_EQ(camel.replication_factor(), 2);
}

TEST(RequestBuilder, EmptyBodyIsTheEmptyRequest) {
  for (std::string_view body : {"", "  \n", "{}"}) {
    v1::ListTopicsRequest request;
    EXPECT_TRUE(BuildRequest(body, "", {}, {}, request).ok()) << body;
    EXPECT_EQ(request.ByteSizeLong(), 0u);
  }
}

TEST(RequestBuilder, UnknownBodyFieldIsRefused) {
  v1::CreateTopicRequest request;
  absl::Status s = BuildRequest(R"({"name": "a", "partitons": 3})", "", {}, {}, request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), HasSubstr("request body: "));
  EXPECT_THAT(Message(s), HasSubstr("partitons"));
}

TEST(RequestBuilder, MalformedJsonNamesTheParseError) {
  for (std::string_view body : {R"({"name": )", "not json", R"({"partitions": "three"})",
                                "[1, 2]", R"({"partitions": 1.5})"}) {
    v1::CreateTopicRequest request;
    absl::Status s = BuildRequest(body, "", {}, {}, request);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(Message(s), HasSubstr("request body: ")) << body;
    EXPECT_GT(Message(s).size(), std::string_view("request body: ").size()) << body;
  }
}

TEST(RequestBuilder, QueryParametersSetScalarsByEitherName) {
  v1::ListClustersRequest clusters;
  ASSERT_TRUE(BuildRequest("", "", {}, {{"include_topics", "true"}}, clusters).ok());
  EXPECT_TRUE(clusters.include_topics());
  v1::ListClustersRequest camel;
  ASSERT_TRUE(BuildRequest("", "", {}, {{"includeTopics", "true"}}, camel).ok());
  EXPECT_TRUE(camel.include_topics());

  v1::CreateTopicRequest create;
  ASSERT_TRUE(BuildRequest("", "", {},
                           {{"name", "t"}, {"partitions", "-2"}, {"cluster", "a b"}},
                           create)
                  .ok());
  EXPECT_EQ(create.name(), "t");
  EXPECT_EQ(create.partitions(), -2);  // the server judges the value
  EXPECT_EQ(create.cluster(), "a b");
}

TEST(RequestBuilder, RepeatedQueryParameterAppends) {
  v1::SeekRequest seek;
  ASSERT_TRUE(BuildRequest("", "", {}, {{"topics", "a"}, {"topics", "b"}}, seek).ok());
  EXPECT_THAT(seek.topics(), ElementsAre("a", "b"));
}

TEST(RequestBuilder, BadQueryValuesNameTheParameter) {
  struct Case {
    std::string name, value, want;
  };
  const Case cases[] = {
      {"partitions", "three",
       R"(query parameter "partitions": "three" is not a 32-bit integer)"},
      {"partitions", "99999999999", R"("99999999999" is not a 32-bit integer)"},
      {"partitions", "", R"("" is not a 32-bit integer)"},
      {"partitions", "3 ", R"("3 " is not a 32-bit integer)"},
      {"nope", "1",
       R"(query parameter "nope": ferry.v1.CreateTopicRequest has no such field)"},
      {"configs", "a", R"(query parameter "configs": a message field)"},
  };
  for (const Case& c : cases) {
    v1::CreateTopicRequest request;
    absl::Status s = BuildRequest("", "", {}, {{c.name, c.value}}, request);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name << "=" << c.value;
    EXPECT_THAT(Message(s), HasSubstr(c.want));
  }
  v1::ListClustersRequest clusters;
  EXPECT_THAT(Message(BuildRequest("", "", {}, {{"include_topics", "1"}}, clusters)),
              HasSubstr(R"("1" is not true or false)"));
}

TEST(RequestBuilder, EnumsTakeNamesOrNumbers) {
  v1::Cluster cluster;  // the only enum-typed field an Admin message has
  ASSERT_TRUE(BuildRequest("", "", {}, {{"state", "STATE_UP"}}, cluster).ok());
  EXPECT_EQ(cluster.state(), v1::Cluster::STATE_UP);
  ASSERT_TRUE(BuildRequest("", "", {}, {{"state", "3"}}, cluster = {}).ok());
  EXPECT_EQ(cluster.state(), v1::Cluster::STATE_DOWN);
  absl::Status s = BuildRequest("", "", {}, {{"state", "UP"}}, cluster = {});
  EXPECT_THAT(Message(s), HasSubstr(R"("UP" is not a value of ferry.v1.Cluster.State)"));
}

TEST(RequestBuilder, PathFieldsFillTheRequest) {
  v1::SeekRequest seek;
  absl::Status s = BuildRequest(R"({"to": {"earliest": true}, "topics": ["a"]})", "",
                                {{"group", "billing"}}, {}, seek);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(seek.group(), "billing");
  EXPECT_TRUE(seek.to().earliest());
  EXPECT_THAT(seek.topics(), ElementsAre("a"));
}

TEST(RequestBuilder, AFieldComesFromOnePlaceOnly) {
  v1::DescribeTopicRequest describe;
  absl::Status s = BuildRequest(R"({"name": "b"})", "", {{"name", "a"}}, {}, describe);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), HasSubstr(R"(path field "name": also set in the body)"));

  s = BuildRequest("", "", {{"name", "a"}}, {{"name", "b"}}, describe = {});
  EXPECT_THAT(Message(s), HasSubstr(R"(query parameter "name": given twice)"));

  s = BuildRequest("", "", {}, {{"cluster", "a"}, {"cluster", "b"}}, describe = {});
  EXPECT_THAT(Message(s), HasSubstr(R"(query parameter "cluster": given twice)"));
}

TEST(RequestBuilder, BodyFieldTakesTheBodyAsThatMessage) {
  v1::PutRouteRequest put;
  absl::Status s = BuildRequest(
      R"({"topic": "orders.*", "write": ["a"], "read": ["a", "b"],
          "autoCreateTopics": true})",
      "route", {}, {}, put);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(put.route().topic(), "orders.*");
  EXPECT_THAT(put.route().write(), ElementsAre("a"));
  EXPECT_THAT(put.route().read(), ElementsAre("a", "b"));
  EXPECT_TRUE(put.route().auto_create_topics());

  // The wrapper's own shape is not the body then.
  s = BuildRequest(R"({"route": {"topic": "x"}})", "route", {}, {}, put = {});
  EXPECT_THAT(Message(s), HasSubstr("request body: "));
}

TEST(RequestBuilder, BodyFieldThatIsNotAMessageIsAnInternalError) {
  v1::PutRouteRequest put;
  EXPECT_EQ(BuildRequest("{}", "nope", {}, {}, put).code(), absl::StatusCode::kInternal);
  v1::DeleteRouteRequest del;
  EXPECT_EQ(BuildRequest("{}", "topic", {}, {}, del).code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ferry::admin_http
