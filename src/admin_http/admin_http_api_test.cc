// The API end to end in one process: HTTP requests as values, through a
// real gRPC server (in-process channel) with a fake Admin service.
#include "admin_http/admin_http_api.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/publisher.pb.h"

namespace ferry::admin_http {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr std::string_view kToken = "0123456789abcdef-token";

// Knows topic "orders" on cluster "main"; ListNodes stays unimplemented.
class FakeAdmin final : public v1::Admin::Service {
 public:
  grpc::Status ListTopics(grpc::ServerContext*, const v1::ListTopicsRequest* request,
                          v1::ListTopicsResponse* response) override {
    if (!request->cluster().empty() && request->cluster() != "main") {
      return {grpc::StatusCode::NOT_FOUND, "unknown cluster " + request->cluster()};
    }
    response->add_topics()->set_name("orders");
    return grpc::Status::OK;
  }
  grpc::Status DescribeTopic(grpc::ServerContext*,
                             const v1::DescribeTopicRequest* request,
                             v1::Topic* response) override {
    if (request->name() != "orders") {
      return {grpc::StatusCode::NOT_FOUND, "no topic " + request->name()};
    }
    response->set_name("orders");
    response->set_cluster("main");
    auto* partition = response->add_partitions();
    partition->set_high_watermark(42);
    return grpc::Status::OK;
  }
  grpc::Status CreateTopic(grpc::ServerContext*, const v1::CreateTopicRequest* request,
                           v1::Topic* response) override {
    ++creates;
    if (request->name() == "orders") {
      return {grpc::StatusCode::ALREADY_EXISTS, "topic orders exists"};
    }
    response->set_name(request->name());
    response->set_cluster(request->cluster());
    return grpc::Status::OK;
  }
  grpc::Status PutRoute(grpc::ServerContext*, const v1::PutRouteRequest* request,
                        v1::Route* response) override {
    *response = request->route();
    return grpc::Status::OK;
  }
  // Holds the call until its deadline.
  grpc::Status Seek(grpc::ServerContext* context, const v1::SeekRequest*,
                    v1::SeekResponse*) override {
    while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    return {grpc::StatusCode::DEADLINE_EXCEEDED, "seek did not finish"};
  }

  std::atomic<int> creates = 0;
};

class AdminHttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  std::unique_ptr<AdminHttpApi> Api(AdminHttpApi::Options options = {}) {
    auto api = AdminHttpApi::Create(std::move(options), v1::Admin::service_full_name(),
                                    server_->InProcessChannel(grpc::ChannelArguments()));
    EXPECT_TRUE(api.ok()) << api.status();
    return api.ok() ? *std::move(api) : nullptr;
  }

  static HttpRequest Request(std::string verb, std::string path, std::string body = "",
                             std::string query = "") {
    return HttpRequest{.verb = std::move(verb),
                       .path = std::move(path),
                       .query = std::move(query),
                       .body = std::move(body),
                       .host = "127.0.0.1:7401"};
  }

  FakeAdmin service_;
  std::unique_ptr<grpc::Server> server_;
};

void ExpectError(const HttpResponse& response, int status, std::string_view code,
                 std::string_view message_part) {
  EXPECT_EQ(response.status, status) << response.body;
  json body = json::parse(response.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << response.body;
  EXPECT_EQ(body["code"], code) << response.body;
  EXPECT_THAT(body["message"].get<std::string>(), HasSubstr(message_part));
}

TEST_F(AdminHttpApiTest, ResourceRouteAnswersTheMethodsResponseAsJson) {
  auto api = Api();
  ASSERT_NE(api, nullptr);
  HttpResponse response = api->Handle(Request("GET", "/api/v1/topics/orders"));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.content_type, "application/json");
  json topic = json::parse(response.body);
  EXPECT_EQ(topic["name"], "orders");
  EXPECT_EQ(topic["partitions"][0]["highWatermark"], "42");
  // Defaults are printed, so a console need not know proto3's.
  EXPECT_EQ(topic["partitions"][0]["lowWatermark"], "0");
  EXPECT_EQ(topic["partitions"][0]["replicas"], json::array());
}

TEST_F(AdminHttpApiTest, QueryParametersReachTheCall) {
  auto api = Api();
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->Handle(Request("GET", "/api/v1/topics", "", "cluster=main")).status,
            200);
  ExpectError(api->Handle(Request("GET", "/api/v1/topics", "", "cluster=b")), 404,
              "NOT_FOUND", "unknown cluster b");
  ExpectError(api->Handle(Request("GET", "/api/v1/topics", "", "clustre=b")), 400,
              "INVALID_ARGUMENT", R"(query parameter "clustre")");
  ExpectError(api->Handle(Request("GET", "/api/v1/topics", "", "cluster=%zz")), 400,
              "INVALID_ARGUMENT", "query string: ");
}

TEST_F(AdminHttpApiTest, GenericRouteCallsAnyMethodByName) {
  auto api = Api();
  ASSERT_NE(api, nullptr);
  HttpResponse response =
      api->Handle(Request("POST", "/api/v1/admin/ListTopics", R"({"cluster": "main"})"));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(json::parse(response.body)["topics"][0]["name"], "orders");
}

TEST_F(AdminHttpApiTest, GrpcStatusBecomesJsonErrorWithItsHttpStatus) {
  auto api = Api({.access = {.allow_writes = true}});
  ASSERT_NE(api, nullptr);
  ExpectError(api->Handle(Request("GET", "/api/v1/topics/nope")), 404, "NOT_FOUND",
              "no topic nope");
  ExpectError(api->Handle(Request("POST", "/api/v1/topics", R"({"name": "orders"})")),
              409, "ALREADY_EXISTS", "topic orders exists");
  // Not overridden by the fake: the generated base answers UNIMPLEMENTED.
  ExpectError(api->Handle(Request("GET", "/api/v1/nodes")), 501, "UNIMPLEMENTED", "");
}

TEST_F(AdminHttpApiTest, UnknownMethodAndPathAre404AndWrongVerbIs405) {
  auto api = Api();
  ASSERT_NE(api, nullptr);
  ExpectError(api->Handle(Request("POST", "/api/v1/admin/ListTopic")), 404, "NOT_FOUND",
              R"(ferry.v1.Admin has no method "ListTopic")");
  ExpectError(api->Handle(Request("GET", "/api/v1/topicz")), 404, "NOT_FOUND",
              "no such path: /api/v1/topicz");
  HttpResponse wrong_verb = api->Handle(Request("PATCH", "/api/v1/topics/orders"));
  ExpectError(wrong_verb, 405, "UNIMPLEMENTED", "allowed: GET, DELETE");
  EXPECT_THAT(wrong_verb.headers, ::testing::Contains(std::make_pair(
                                      std::string("Allow"), std::string("GET, DELETE"))));
}

TEST_F(AdminHttpApiTest, WritesAreRefusedByDefaultBeforeReachingTheService) {
  auto api = Api();
  ASSERT_NE(api, nullptr);
  ExpectError(api->Handle(Request("POST", "/api/v1/topics", R"({"name": "new"})")), 403,
              "PERMISSION_DENIED", "admin.http.allow_writes");
  ExpectError(api->Handle(Request("POST", "/api/v1/admin/CreateTopic", "{}")), 403,
              "PERMISSION_DENIED", "admin.http.allow_writes");
  EXPECT_EQ(service_.creates, 0);
  // Reads stay open.
  EXPECT_EQ(
      api->Handle(Request("POST", "/api/v1/admin/DescribeTopic", R"({"name": "orders"})"))
          .status,
      200);
}

TEST_F(AdminHttpApiTest, TheTokenOpensWrites) {
  auto api = Api({.access = {.token = std::string(kToken)}});
  ASSERT_NE(api, nullptr);
  HttpRequest request = Request("POST", "/api/v1/topics", R"({"name": "new"})");
  ExpectError(api->Handle(request), 403, "PERMISSION_DENIED", "Bearer");
  request.authorization = fmt::format("Bearer {}", kToken);
  HttpResponse response = api->Handle(request);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(json::parse(response.body)["name"], "new");
  EXPECT_EQ(service_.creates, 1);
}

TEST_F(AdminHttpApiTest, MalformedBodyIs400NamingTheParseError) {
  auto api = Api({.access = {.allow_writes = true}});
  ASSERT_NE(api, nullptr);
  ExpectError(api->Handle(Request("POST", "/api/v1/topics", R"({"name": )")), 400,
              "INVALID_ARGUMENT", "request body: ");
  ExpectError(api->Handle(Request("POST", "/api/v1/topics", R"({"nmae": "x"})")), 400,
              "INVALID_ARGUMENT", "nmae");
  EXPECT_EQ(service_.creates, 0);
}

TEST_F(AdminHttpApiTest, PutRouteTakesTheRouteItself) {
  auto api = Api({.access = {.allow_writes = true}});
  ASSERT_NE(api, nullptr);
  HttpResponse response = api->Handle(
      Request("PUT", "/api/v1/routes", R"({"topic": "orders.*", "write": ["main"]})"));
  ASSERT_EQ(response.status, 200) << response.body;
  json route = json::parse(response.body);
  EXPECT_EQ(route["topic"], "orders.*");
  EXPECT_EQ(route["write"], json::array({"main"}));
}

TEST_F(AdminHttpApiTest, ACallOverItsTimeoutIs504) {
  auto api =
      Api({.access = {.allow_writes = true}, .call_timeout = absl::Milliseconds(200)});
  ASSERT_NE(api, nullptr);
  const absl::Time start = absl::Now();
  ExpectError(api->Handle(Request("POST", "/api/v1/groups/g/seek", "{}")), 504,
              "DEADLINE_EXCEEDED", "");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(AdminHttpApiTest, ServesItsOpenApiDocument) {
  auto api = Api({.version = "9.9.9"});
  ASSERT_NE(api, nullptr);
  HttpResponse response = api->Handle(Request("GET", "/api/v1/openapi.json"));
  ASSERT_EQ(response.status, 200);
  json document = json::parse(response.body);
  EXPECT_EQ(document["info"]["version"], "9.9.9");
  EXPECT_TRUE(document["paths"].contains("/api/v1/admin/Seek"));
}

TEST(AdminHttpApiCreate, UnknownServiceIsRefused) {
  auto api = AdminHttpApi::Create({}, "ferry.v1.Nope", nullptr);
  EXPECT_EQ(api.status().code(), absl::StatusCode::kInternal);
}

TEST(AdminHttpApiCreate, ServiceWithoutTheResourceRoutesMethodsIsRefused) {
  // The Publisher has none of the methods the resource routes call.
  ASSERT_NE(v1::PublishRequest::descriptor(), nullptr);  // links its descriptor in
  auto api = AdminHttpApi::Create({}, "ferry.v1.Publisher", nullptr);
  EXPECT_EQ(api.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(api.status().message()), HasSubstr("has no unary method"));
}

}  // namespace
}  // namespace ferry::admin_http
