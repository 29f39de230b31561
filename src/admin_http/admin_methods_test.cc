#include "admin_http/admin_methods.h"

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include "ferry/v1/admin.grpc.pb.h"
#include "ferry/v1/publisher.grpc.pb.h"

namespace ferry::admin_http {
namespace {

using ::testing::ElementsAreArray;
using ::testing::UnorderedElementsAreArray;

const google::protobuf::ServiceDescriptor* Admin() {
  return v1::GetNodeRequest::descriptor()->file()->FindServiceByName("Admin");
}

// The Admin methods open over HTTP without allow_writes or the token. A new
// RPC whose name reads as a read (List*, Get*, Describe*, Translate*) makes
// this test fail until it is added here: check that it changes nothing.
TEST(AdminMethods, ReadOnlySetIsExactlyTheseMethods) {
  auto methods = AdminMethods::From(Admin());
  ASSERT_TRUE(methods.ok()) << methods.status();
  std::vector<std::string> read_only;
  for (const auto& [name, method] : methods->all()) {
    if (method.read_only) read_only.push_back(name);
  }
  EXPECT_THAT(read_only, UnorderedElementsAreArray<std::string>({
                             "GetNode",
                             "ListNodes",
                             "ListClusters",
                             "ListTopics",
                             "DescribeTopic",
                             // Reads with a standalone reader: commits nothing.
                             "ListLatestMessages",
                             "ListGroups",
                             "DescribeGroup",
                             "ListRoutes",
                             "ListAcls",
                             "ListMirrors",
                             "GetMirrorStatus",
                             "TranslateOffsets",
                             "GetMigration",
                             "ListMigrations",
                             // Only counts the fallback use a client reports.
                             "GetClientConfig",
                         }));
}

TEST(AdminMethods, EveryAdminMethodIsServedWithItsGrpcPath) {
  auto methods = AdminMethods::From(Admin());
  ASSERT_TRUE(methods.ok()) << methods.status();
  ASSERT_EQ(methods->all().size(), static_cast<size_t>(Admin()->method_count()));
  const AdminMethod* seek = methods->Find("Seek");
  ASSERT_NE(seek, nullptr);
  EXPECT_EQ(seek->grpc_path, "/ferry.v1.Admin/Seek");
  EXPECT_FALSE(seek->read_only);
  EXPECT_EQ(seek->descriptor->input_type(), v1::SeekRequest::descriptor());
  EXPECT_EQ(methods->Find("Nope"), nullptr);
  EXPECT_EQ(methods->Find("seek"), nullptr);  // names are case-sensitive
}

TEST(AdminMethods, StreamingMethodsAreLeftOut) {
  auto methods = AdminMethods::From(
      v1::PublishRequest::descriptor()->file()->FindServiceByName("Publisher"));
  ASSERT_TRUE(methods.ok()) << methods.status();
  std::vector<std::string> names;
  for (const auto& [name, unused] : methods->all()) names.push_back(name);
  EXPECT_THAT(names, ElementsAreArray<std::string>({"Publish"}));
}

TEST(AdminMethods, ReadOnlyNeedsThePrefixAsAWholeWord) {
  for (std::string_view name :
       {"ListTopics", "GetNode", "DescribeGroup", "TranslateOffsets", "ListX"}) {
    EXPECT_TRUE(IsReadOnlyMethodName(name)) << name;
  }
  for (std::string_view name :
       {"List", "Get", "Listen", "Getaway", "Describes", "Translated", "DeleteTopic",
        "Seek", "PutRoute", "listTopics", "", "SetGroupFilter"}) {
    EXPECT_FALSE(IsReadOnlyMethodName(name)) << name;
  }
}

TEST(AdminMethods, NullServiceIsRefused) {
  EXPECT_EQ(AdminMethods::From(nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::admin_http
