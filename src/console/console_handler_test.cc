#include "console/console_handler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "console/console_files.h"

namespace ferry::console {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;

std::string Header(const admin_http::HttpResponse& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return {};
}

std::set<std::string> EmbeddedNames() {
  std::set<std::string> names;
  for (const EmbeddedFile& file : EmbeddedFiles()) names.emplace(file.name);
  return names;
}

TEST(ConsoleHandlerTest, RootWithoutSlashRedirectsToTheIndex) {
  admin_http::HttpResponse response = ServeConsole("/ui", "");
  EXPECT_EQ(response.status, 301);
  EXPECT_THAT(response.headers, Contains(Pair("Location", "/ui/")));
}

TEST(ConsoleHandlerTest, RootServesIndexHtml) {
  admin_http::HttpResponse response = ServeConsole("/ui/", "");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(response.body, HasSubstr("<!doctype html>"));
  EXPECT_EQ(Header(response, "Cache-Control"), "no-cache");
  EXPECT_THAT(Header(response, "Content-Security-Policy"),
              HasSubstr("default-src 'self'"));
  EXPECT_EQ(response.body, ServeConsole("/ui/index.html", "").body);
}

TEST(ConsoleHandlerTest, EveryFileIsServedWhole) {
  ASSERT_FALSE(EmbeddedFiles().empty());
  for (const EmbeddedFile& file : EmbeddedFiles()) {
    admin_http::HttpResponse response = ServeConsole("/ui/" + std::string(file.name), "");
    EXPECT_EQ(response.status, 200) << file.name;
    EXPECT_EQ(response.body, file.content) << file.name;
    EXPECT_FALSE(file.content.empty()) << file.name;
    EXPECT_NE(response.content_type, "application/octet-stream") << file.name;
    EXPECT_EQ(Header(response, "ETag"), file.etag) << file.name;
  }
}

TEST(ConsoleHandlerTest, MatchingETagAnswersNotModifiedWithoutBody) {
  const std::string etag = Header(ServeConsole("/ui/", ""), "ETag");
  ASSERT_THAT(etag, ::testing::StartsWith("\""));
  admin_http::HttpResponse cached = ServeConsole("/ui/", etag);
  EXPECT_EQ(cached.status, 304);
  EXPECT_TRUE(cached.body.empty());
  EXPECT_EQ(Header(cached, "ETag"), etag);
  EXPECT_EQ(ServeConsole("/ui/", "W/\"other\", " + etag).status, 304);
  EXPECT_EQ(ServeConsole("/ui/", "\"stale\"").status, 200);
}

TEST(ConsoleHandlerTest, PathsNamingNoFileAre404) {
  for (std::string_view path : {"/ui/missing.js", "/ui/topics", "/ui/../index.html",
                                "/ui/web/index.html", "/uix", "/ui//index.html"}) {
    admin_http::HttpResponse response = ServeConsole(path, "");
    EXPECT_EQ(response.status, 404) << path;
    EXPECT_THAT(response.body, HasSubstr("/ui/#/topics")) << path;
  }
}

TEST(ConsoleHandlerTest, ContentTypesFollowTheExtension) {
  EXPECT_EQ(ContentTypeFor("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("console.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("logo.svg"), "image/svg+xml");
  EXPECT_EQ(ContentTypeFor("notes.txt"), "application/octet-stream");
}

// A renamed or missing module breaks the page only in a browser; catch it here.
TEST(ConsoleHandlerTest, EveryReferencedFileIsEmbedded) {
  const std::set<std::string> names = EmbeddedNames();
  const std::regex reference(
      R"re((?:src|href)="\./([^"]+)"|from "\./([^"]+)"|import\("\./([^"]+)"\))re");
  int references = 0;
  for (const EmbeddedFile& file : EmbeddedFiles()) {
    std::string content(file.content);
    for (std::sregex_iterator it(content.begin(), content.end(), reference), end;
         it != end; ++it) {
      std::string target = (*it)[1].matched   ? (*it)[1]
                           : (*it)[2].matched ? (*it)[2]
                                              : (*it)[3];
      EXPECT_TRUE(names.contains(target)) << file.name << " references " << target;
      ++references;
    }
  }
  EXPECT_GT(references, 3);
}

}  // namespace
}  // namespace ferry::console
