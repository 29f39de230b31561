#include "admin_http/openapi.h"

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "admin_http/path_router.h"
#include "ferry/v1/admin.pb.h"

namespace ferry::admin_http {
namespace {

using nlohmann::json;
using ::testing::Contains;

class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = v1::GetNodeRequest::descriptor()->file()->FindServiceByName("Admin");
    auto methods = AdminMethods::From(service_);
    ASSERT_TRUE(methods.ok()) << methods.status();
    methods_ = *std::move(methods);
    document_ = json::parse(OpenApiDocument(methods_, "1.2.3"));
  }

  const google::protobuf::ServiceDescriptor* service_ = nullptr;
  AdminMethods methods_;
  json document_;
};

TEST_F(OpenApiTest, IsOpenApi3WithTheVersion) {
  EXPECT_EQ(document_["openapi"], "3.0.3");
  EXPECT_EQ(document_["info"]["version"], "1.2.3");
  EXPECT_EQ(document_["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
}

TEST_F(OpenApiTest, HasEveryAdminMethodUnderTheGenericRoute) {
  ASSERT_GT(service_->method_count(), 20);
  for (int i = 0; i < service_->method_count(); ++i) {
    const auto* method = service_->method(i);
    const std::string path = "/api/v1/admin/" + method->name();
    ASSERT_TRUE(document_["paths"].contains(path)) << path;
    const json& post = document_["paths"][path]["post"];
    EXPECT_EQ(post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
              "#/components/schemas/" + method->input_type()->full_name());
    EXPECT_EQ(post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
              "#/components/schemas/" + method->output_type()->full_name());
    // Mutating operations, and only they, need the token.
    EXPECT_EQ(post.contains("security"), !IsReadOnlyMethodName(method->name()))
        << method->name();
  }
}

TEST_F(OpenApiTest, HasEveryResourceRouteWithItsPathParameters) {
  for (const ResourceRoute& route : ResourceRoutes()) {
    std::string verb(route.verb);
    for (char& c : verb) c = static_cast<char>(std::tolower(c));
    const json& operation = document_["paths"][std::string(route.pattern)][verb];
    ASSERT_TRUE(operation.is_object()) << route.verb << " " << route.pattern;
    EXPECT_EQ(operation["operationId"], route.method);
    for (std::string_view field : PatternFields(route.pattern)) {
      bool found = false;
      for (const json& p : operation["parameters"]) {
        found |= p["in"] == "path" && p["name"] == field && p["required"] == true;
      }
      EXPECT_TRUE(found) << route.pattern << " " << field;
    }
  }
}

TEST_F(OpenApiTest, GetRoutesListScalarFieldsAsQueryParameters) {
  const json& list = document_["paths"]["/api/v1/topics"]["get"]["parameters"];
  EXPECT_THAT(list, Contains(json{{"name", "cluster"},
                                  {"in", "query"},
                                  {"required", false},
                                  {"schema", {{"type", "string"}}}}));
  const json& describe = document_["paths"]["/api/v1/topics/{name}"]["get"]["parameters"];
  ASSERT_EQ(describe.size(), 2u);  // name in the path, cluster in the query
  EXPECT_EQ(describe[1]["name"], "cluster");
}

TEST_F(OpenApiTest, PutRouteTakesTheRouteAsItsBody) {
  EXPECT_EQ(document_["paths"]["/api/v1/routes"]["put"]["requestBody"]["content"]
                     ["application/json"]["schema"]["$ref"],
            "#/components/schemas/ferry.v1.Route");
}

TEST_F(OpenApiTest, AclsAreListedAddedWithABodyAndRemovedByQuery) {
  const json& acls = document_["paths"]["/api/v1/acls"];
  EXPECT_EQ(acls["get"]["operationId"], "ListAcls");
  EXPECT_EQ(acls["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ferry.v1.AddAclRequest");
  std::vector<std::string> query;
  for (const json& parameter : acls["delete"]["parameters"]) {
    query.push_back(parameter["name"]);
  }
  EXPECT_EQ(query, (std::vector<std::string>{"principal", "resource", "operations"}));
}

TEST_F(OpenApiTest, SchemasFollowGrpcJsonMapping) {
  const json& schemas = document_["components"]["schemas"];
  const json& partition = schemas["ferry.v1.TopicPartition"]["properties"];
  EXPECT_EQ(partition["highWatermark"], (json{{"type", "string"}, {"format", "int64"}}));
  EXPECT_EQ(partition["partition"], (json{{"type", "integer"}, {"format", "int32"}}));
  EXPECT_EQ(partition["inSyncReplicas"]["type"], "array");
  const json& cluster = schemas["ferry.v1.Cluster"]["properties"];
  EXPECT_THAT(cluster["state"]["enum"], Contains("STATE_UP"));
  EXPECT_EQ(cluster["lastContact"]["format"], "date-time");
  EXPECT_EQ(schemas["ferry.v1.CreateTopicRequest"]["properties"]["configs"]
                   ["additionalProperties"]["type"],
            "string");
  EXPECT_THAT(schemas["ferry.v1.Position"]["description"].get<std::string>(),
              ::testing::HasSubstr("earliest, latest, timestamp, offsets"));
}

TEST_F(OpenApiTest, EveryReferenceResolves) {
  const json& schemas = document_["components"]["schemas"];
  int refs = 0;
  std::function<void(const json&)> walk = [&](const json& node) {
    if (node.is_object()) {
      if (node.contains("$ref")) {
        ++refs;
        std::string ref = node["$ref"];
        const std::string prefix = "#/components/schemas/";
        ASSERT_EQ(ref.rfind(prefix, 0), 0u) << ref;
        EXPECT_TRUE(schemas.contains(ref.substr(prefix.size()))) << ref;
      }
      for (const auto& [key, value] : node.items()) walk(value);
    } else if (node.is_array()) {
      for (const json& value : node) walk(value);
    }
  };
  walk(document_);
  EXPECT_GT(refs, 50);
}

}  // namespace
}  // namespace ferry::admin_http
