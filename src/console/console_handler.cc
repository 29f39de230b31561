#include "console/console_handler.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "console/console_files.h"

namespace ferry::console {
namespace {

constexpr std::string_view kIndex = "index.html";

// The console shows message keys, headers and values from the topics: the
// policy keeps a value that looks like markup from ever running as script
// (the pages also only insert text), and no other site may frame the console.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'";

admin_http::HttpResponse Text(int status, std::string body) {
  return admin_http::HttpResponse{.status = status,
                                  .body = std::move(body),
                                  .content_type = "text/plain; charset=utf-8"};
}

const EmbeddedFile* Find(std::string_view name) {
  std::span<const EmbeddedFile> files = EmbeddedFiles();
  auto it = std::find_if(files.begin(), files.end(),
                         [name](const EmbeddedFile& f) { return f.name == name; });
  return it == files.end() ? nullptr : &*it;
}

// If-None-Match holds one ETag, a comma-separated list or "*".
bool Matches(std::string_view if_none_match, std::string_view etag) {
  return if_none_match == "*" || if_none_match.find(etag) != std::string_view::npos;
}

}  // namespace

std::string_view ContentTypeFor(std::string_view name) {
  constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
  };
  for (const auto& [extension, type] : kTypes) {
    if (name.ends_with(extension)) return type;
  }
  return "application/octet-stream";
}

admin_http::HttpResponse ServeConsole(std::string_view path,
                                      std::string_view if_none_match) {
  if (path == kConsoleRoot) {
    admin_http::HttpResponse response = Text(301, "the console is at /ui/\n");
    response.headers.emplace_back("Location", fmt::format("{}/", kConsoleRoot));
    return response;
  }
  const std::string prefix = fmt::format("{}/", kConsoleRoot);
  std::string_view name;
  if (path.starts_with(prefix)) name = path.substr(prefix.size());
  if (path == prefix) name = kIndex;
  const EmbeddedFile* file = name.empty() ? nullptr : Find(name);
  if (file == nullptr) {
    return Text(404,
                fmt::format("no console file {}: the console is at /ui/ and its pages "
                            "are addressed after the # (/ui/#/topics)\n",
                            path));
  }
  admin_http::HttpResponse response;
  response.content_type = std::string(ContentTypeFor(file->name));
  response.headers = {
      {"ETag", std::string(file->etag)},
      // Revalidate every time: a node upgraded in place serves its own
      // console at once, and a match costs a 304 without a body.
      {"Cache-Control", "no-cache"},
      {"X-Content-Type-Options", "nosniff"},
      {"Content-Security-Policy", std::string(kContentSecurityPolicy)},
  };
  if (Matches(if_none_match, file->etag)) {
    response.status = 304;
  } else {
    response.body = std::string(file->content);
  }
  return response;
}

}  // namespace ferry::console
