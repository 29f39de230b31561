// The HTTP/JSON admin API as an operator (or a console) meets it: a real
// ferryd on the embedded store and on Kafka, operated through HTTP only,
// with the CLI publishing and consuming.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "admin_http/path_router.h"
#include "ferry/v1/admin.pb.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::ProcessResult;
using ::ferry::testing::RunFerryCli;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "http-admin-test-token-0123456789";

enum class Backend { kEmbedded, kKafka };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kEmbedded ? "Embedded" : "Kafka";
}

// One HTTP answer with its body parsed (null when it is not JSON).
struct Answer {
  int status;
  json body;
};

class AdminHttpTest : public ::testing::TestWithParam<Backend> {
 protected:
  // The cluster every topic routes to.
  std::string Cluster() const {
    return GetParam() == Backend::kEmbedded ? "local" : "main";
  }

  // A node on the backend with `admin_yaml` (an `admin:` section) and `env`.
  std::unique_ptr<FerrydProcess> Node(
      const std::string& admin_yaml, const std::map<std::string, std::string>& env = {}) {
    std::string yaml = admin_yaml;
    if (GetParam() == Backend::kKafka) {
      testing::KafkaBroker* broker = testing::SharedBroker();
      if (broker == nullptr) return nullptr;
      yaml = absl::StrCat(testing::MainClusterYaml(broker->bootstrap()), yaml);
    }
    auto node = FerrydProcess::Start(yaml, env);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  // A node every topic of which routes to Cluster(), with a second, embedded
  // cluster "spare" for mirrors and migrations to copy to.
  std::unique_ptr<FerrydProcess> NodeWithSpare(const std::string& admin_yaml) {
    std::string clusters = "clusters:\n  local: { type: embedded, path: local-data }\n";
    if (GetParam() == Backend::kKafka) {
      testing::KafkaBroker* broker = testing::SharedBroker();
      if (broker == nullptr) return nullptr;
      clusters = testing::MainClusterYaml(broker->bootstrap());
    }
    auto node = FerrydProcess::Start(absl::StrCat(
        clusters, "  spare: { type: embedded, path: spare-data }\n",
        "routes:\n  - { topic: \"*\", write: [", Cluster(), "] }\n", admin_yaml));
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? *std::move(node) : nullptr;
  }

  static Answer Call(const FerrydProcess& node, const std::string& verb,
                     const std::string& path, const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {}) {
    auto [status, text] = node.Http(verb, path, body, headers);
    return {status, json::parse(text, nullptr, /*allow_exceptions=*/false)};
  }

  // GETs `path` until `done` holds, for state that settles asynchronously
  // (commits, group membership); the last answer either way.
  static Answer GetUntil(const FerrydProcess& node, const std::string& path,
                         const std::function<bool(const Answer&)>& done) {
    const absl::Time until = absl::Now() + absl::Seconds(30);
    Answer answer = Call(node, "GET", path);
    while (!done(answer) && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(200));
      answer = Call(node, "GET", path);
    }
    return answer;
  }

  static ProcessResult Cli(const FerrydProcess& node, std::vector<std::string> args,
                           const std::string& input = "") {
    args.insert(args.begin(), {"--server", node.grpc_address()});
    auto result = RunFerryCli(args, {}, input);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : ProcessResult{.exit_code = -1};
  }
};

// body[key], or null when body is not an object holding it (answers are
// checked before they settle, so any shape may come).
json Get(const json& body, const std::string& key) {
  return body.is_object() && body.contains(key) ? body[key] : json();
}

// Sums an int64 field (a JSON string in gRPC's mapping) over `partitions`.
int64_t Sum(const json& partitions, const std::string& field) {
  int64_t sum = 0;
  if (!partitions.is_array()) return -1;
  for (const json& p : partitions) {
    json value = Get(p, field);
    if (!value.is_string()) return -1;
    sum += std::stoll(value.get<std::string>());
  }
  return sum;
}

int64_t Lag(const json& group) { return Sum(Get(group, "partitions"), "lag"); }

bool HasNamed(const json& list, const std::string& key, const std::string& name) {
  if (!list.is_array()) return false;
  for (const json& item : list) {
    if (Get(item, key) == name) return true;
  }
  return false;
}

// Sends `request` as it is over a fresh connection to `address` (127.0.0.1
// only) and returns everything the node answers until it closes.
std::string RawHttp(const std::string& address, const std::string& request) {
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 &&
      write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) answer.append(buffer, n);
  }
  close(fd);
  return answer;
}

void ExpectError(const Answer& answer, int status, const std::string& code,
                 const std::string& message_part) {
  EXPECT_EQ(answer.status, status) << answer.body;
  EXPECT_EQ(Get(answer.body, "code"), code) << answer.body;
  const json message = Get(answer.body, "message");
  EXPECT_THAT(message.is_string() ? message.get<std::string>() : message.dump(),
              HasSubstr(message_part));
}

TEST_P(AdminHttpTest, OperatesTopicsGroupsAndRoutesOverHttpOnly) {
  auto node = Node("admin: { http: { allow_writes: true } }\n");
  ASSERT_NE(node, nullptr);
  const std::string topic = "http.orders";
  const std::string group = "http.billing";

  Answer created = Call(*node, "POST", "/api/v1/topics",
                        json{{"name", topic}, {"partitions", 2}}.dump());
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(created.body["name"], topic);
  EXPECT_EQ(created.body["cluster"], Cluster());
  ExpectError(Call(*node, "POST", "/api/v1/topics", json{{"name", topic}}.dump()), 409,
              "ALREADY_EXISTS", topic);

  ProcessResult produce =
      Cli(*node, {"produce", "--topic", topic, "--key-delimiter", ":"},
          "a:1\nb:2\nc:3\nd:4\ne:5\nf:6\n");
  ASSERT_EQ(produce.exit_code, 0) << produce.err;

  Answer topics = Call(*node, "GET", "/api/v1/topics");
  ASSERT_EQ(topics.status, 200) << topics.body;
  EXPECT_TRUE(HasNamed(topics.body["topics"], "name", topic)) << topics.body;
  Answer described = Call(*node, "GET", "/api/v1/topics/" + topic);
  ASSERT_EQ(described.status, 200) << described.body;
  ASSERT_EQ(described.body["partitions"].size(), 2u) << described.body;
  EXPECT_EQ(Sum(described.body["partitions"], "highWatermark") -
                Sum(described.body["partitions"], "lowWatermark"),
            6);
  EXPECT_EQ(
      Call(*node, "GET", "/api/v1/topics/" + topic).body,
      Call(*node, "POST", "/api/v1/admin/DescribeTopic", json{{"name", topic}}.dump())
          .body);

  // The newest messages (the console's topic page): bytes are base64.
  auto values = [](const Answer& a) {
    std::multiset<std::string> decoded;
    for (const json& m : Get(a.body, "messages")) {
      std::string value;
      EXPECT_TRUE(absl::Base64Unescape(m["value"].get<std::string>(), &value)) << m;
      decoded.insert(value);
    }
    return decoded;
  };
  Answer all = Call(*node, "GET", "/api/v1/topics/" + topic + "/messages?limit=100");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(values(all), (std::multiset<std::string>{"1", "2", "3", "4", "5", "6"}));
  Answer newest = Call(*node, "GET", "/api/v1/topics/" + topic + "/messages?limit=4");
  ASSERT_EQ(newest.status, 200) << newest.body;
  EXPECT_EQ(values(newest).size(), 4u) << newest.body;
  ExpectError(Call(*node, "GET", "/api/v1/topics/" + topic + "/messages?limit=101"), 400,
              "INVALID_ARGUMENT", "limit");
  ExpectError(Call(*node, "GET", "/api/v1/topics/http.none/messages"), 404, "NOT_FOUND",
              "http.none");

  ProcessResult consume = Cli(*node, {"consume", "--group", group, "--topic", topic,
                                      "--from", "earliest", "--count", "6"});
  ASSERT_EQ(consume.exit_code, 0) << consume.err;
  Answer groups = GetUntil(*node, "/api/v1/groups", [&](const Answer& a) {
    return HasNamed(Get(a.body, "groups"), "name", group);
  });
  EXPECT_TRUE(HasNamed(groups.body["groups"], "name", group)) << groups.body;
  Answer caught_up = GetUntil(*node, "/api/v1/groups/" + group, [](const Answer& a) {
    return Get(a.body, "partitions").size() == 2 && Lag(a.body) == 0;
  });
  EXPECT_EQ(Lag(caught_up.body), 0) << caught_up.body;

  Answer seek = Call(*node, "POST", "/api/v1/groups/" + group + "/seek",
                     R"({"to": {"earliest": true}})");
  ASSERT_EQ(seek.status, 200) << seek.body;
  EXPECT_EQ(seek.body["offsets"].size(), 2u) << seek.body;
  Answer rewound = GetUntil(*node, "/api/v1/groups/" + group,
                            [](const Answer& a) { return Lag(a.body) == 6; });
  EXPECT_EQ(Lag(rewound.body), 6) << rewound.body;

  // Pause state travels through the control topic: it shows once applied.
  auto paused = [](bool want) {
    return [want](const Answer& a) { return Get(a.body, "paused") == want; };
  };
  ASSERT_EQ(Call(*node, "POST", "/api/v1/groups/" + group + "/pause").status, 200);
  EXPECT_EQ(GetUntil(*node, "/api/v1/groups/" + group, paused(true)).body["paused"],
            true);
  ASSERT_EQ(Call(*node, "POST", "/api/v1/groups/" + group + "/resume").status, 200);
  EXPECT_EQ(GetUntil(*node, "/api/v1/groups/" + group, paused(false)).body["paused"],
            false);

  Answer put = Call(*node, "PUT", "/api/v1/routes",
                    json{{"topic", "http.*"}, {"write", {Cluster()}}}.dump());
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.body["read"], json::array({Cluster()}));
  EXPECT_TRUE(
      HasNamed(Call(*node, "GET", "/api/v1/routes").body["routes"], "topic", "http.*"));
  ASSERT_EQ(Call(*node, "DELETE", "/api/v1/routes/http.*").status, 200);
  EXPECT_FALSE(
      HasNamed(Call(*node, "GET", "/api/v1/routes").body["routes"], "topic", "http.*"));
  ExpectError(Call(*node, "DELETE", "/api/v1/routes/http.*"), 404, "NOT_FOUND", "http.*");

  ASSERT_EQ(Call(*node, "DELETE", "/api/v1/topics/" + topic).status, 200);
  // Kafka deletes topics asynchronously.
  ExpectError(GetUntil(*node, "/api/v1/topics/" + topic,
                       [](const Answer& a) { return a.status == 404; }),
              404, "NOT_FOUND", topic);
}

TEST_P(AdminHttpTest, WritesNeedTheTokenAndBadInputGetsPreciseErrors) {
  auto node = Node("", {{"FERRY_ADMIN_HTTP_TOKEN", kToken}});
  ASSERT_NE(node, nullptr);
  const std::string create = json{{"name", "http.guarded"}}.dump();

  ExpectError(Call(*node, "POST", "/api/v1/topics", create), 403, "PERMISSION_DENIED",
              "Authorization: Bearer");
  ExpectError(Call(*node, "POST", "/api/v1/topics", create,
                   {{"Authorization", "Bearer not-the-token"}}),
              401, "UNAUTHENTICATED", "does not match");
  ExpectError(Call(*node, "GET", "/api/v1/topics/http.guarded"), 404, "NOT_FOUND",
              "http.guarded");
  const std::map<std::string, std::string> bearer = {
      {"Authorization", absl::StrCat("Bearer ", kToken)}};
  Answer created = Call(*node, "POST", "/api/v1/topics", create, bearer);
  EXPECT_EQ(created.status, 200) << created.body;
  // Reading the newest messages is a read: no token needed.
  Answer latest = Call(*node, "GET", "/api/v1/topics/http.guarded/messages");
  EXPECT_EQ(latest.status, 200) << latest.body;
  EXPECT_EQ(latest.body["messages"], json::array()) << latest.body;

  ExpectError(Call(*node, "POST", "/api/v1/topics", R"({"name": )", bearer), 400,
              "INVALID_ARGUMENT", "request body: ");
  ExpectError(Call(*node, "POST", "/api/v1/topics", R"({"nmae": "x"})", bearer), 400,
              "INVALID_ARGUMENT", "nmae");
  ExpectError(Call(*node, "POST", "/api/v1/topics", R"({"name": "bad name"})", bearer),
              400, "INVALID_ARGUMENT", "bad name");
  ExpectError(Call(*node, "GET", "/api/v1/topics?partitions=2"), 400, "INVALID_ARGUMENT",
              R"(query parameter "partitions")");
  ExpectError(Call(*node, "POST", "/api/v1/admin/NoSuchMethod", "{}"), 404, "NOT_FOUND",
              "NoSuchMethod");
  ExpectError(Call(*node, "GET", "/api/v1/admin/ListTopics"), 405, "UNIMPLEMENTED",
              "allowed: POST");
  ExpectError(Call(*node, "GET", "/api/v1/nothing"), 404, "NOT_FOUND", "no such path");
  // A POST without Content-Length has no body (what `curl -X POST` sends).
  EXPECT_THAT(RawHttp(node->http_address(),
                      "POST /api/v1/groups/g/pause HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\n\r\n"),
              AllOf(HasSubstr("HTTP/1.1 403"), HasSubstr("PERMISSION_DENIED")));
  EXPECT_EQ(
      Call(*node, "POST", "/api/v1/admin/ListTopics", std::string(2 << 20, ' ')).status,
      413);

  // The token is a secret: the node never logs it.
  EXPECT_THAT(node->Log(), Not(HasSubstr(kToken)));
  EXPECT_THAT(node->Log(), HasSubstr("writes need the bearer token"));
}

// One call of the route table below: the answer's status, and a part of its
// body (the error message, or any text of a good answer).
struct RouteCall {
  std::string verb;
  std::string path;
  std::string body;
  int status;
  std::string part;
};

// Given a node with a spare cluster and writes allowed, every resource route
// answers a good request and a bad one as documented (README, HTTP API); a
// route added to path_router.cc without both here fails the test.
TEST_P(AdminHttpTest, EveryResourceRouteAnswersGoodAndBadInput) {
  auto node = NodeWithSpare("admin: { http: { allow_writes: true } }\n");
  ASSERT_NE(node, nullptr);
  const std::string c = Cluster();
  const std::string t = "http.every";
  const std::string g = "http.every-readers";
  std::vector<RouteCall> done;
  auto run = [&](const std::vector<RouteCall>& calls) {
    for (const RouteCall& call : calls) {
      Answer answer = Call(*node, call.verb, call.path, call.body);
      EXPECT_EQ(answer.status, call.status)
          << call.verb << " " << call.path << " " << call.body << ": " << answer.body;
      EXPECT_THAT(answer.body.dump(), HasSubstr(call.part))
          << call.verb << " " << call.path << " " << call.body;
      done.push_back(call);
    }
  };
  run({
      {"GET", "/api/v1/node", "", 200, "SERVING"},
      {"GET", "/api/v1/node?x=1", "", 400, R"(query parameter \"x\")"},
      {"GET", "/api/v1/nodes", "", 200, "nodes"},
      {"GET", "/api/v1/nodes?x=1", "", 400, R"(query parameter \"x\")"},
      {"GET", "/api/v1/clusters", "", 200, "spare"},
      {"GET", "/api/v1/clusters?x=1", "", 400, R"(query parameter \"x\")"},
      {"POST", "/api/v1/clusters/spare/drain", "", 200, "{}"},
      {"POST", "/api/v1/clusters/nope/drain", "", 404, "nope"},
      {"POST", "/api/v1/clusters/spare/undrain", "", 200, "{}"},
      {"POST", "/api/v1/clusters/nope/undrain", "", 404, "nope"},
      {"POST", "/api/v1/topics", json{{"name", t}, {"partitions", 2}}.dump(), 200, t},
      {"POST", "/api/v1/topics", json{{"name", t}}.dump(), 409, t},
      {"GET", "/api/v1/topics", "", 200, t},
      {"GET", "/api/v1/topics?cluster=nope", "", 404, "nope"},
      {"GET", "/api/v1/topics/" + t, "", 200, "highWatermark"},
      {"GET", "/api/v1/topics/http.none", "", 404, "http.none"},
  });
  ASSERT_EQ(Cli(*node, {"produce", "--topic", t}, "1\n2\n3\n4\n").exit_code, 0);
  ASSERT_EQ(Cli(*node, {"consume", "--group", g, "--topic", t, "--from", "earliest",
                        "--count", "4"})
                .exit_code,
            0);
  const std::string described = "/api/v1/groups/" + g + "?cluster=" + c;
  ASSERT_EQ(Lag(GetUntil(*node, described,
                         [](const Answer& a) {
                           return Get(a.body, "partitions").size() == 2 &&
                                  Lag(a.body) == 0;
                         })
                    .body),
            0);
  const json job = {
      {"name", "http-copy"}, {"source", c}, {"target", "spare"}, {"topics", {t}}};
  json bad_job = job;
  bad_job["name"] = "bad name";
  run({
      {"GET", "/api/v1/topics/" + t + "/messages", "", 200, "messages"},
      {"GET", "/api/v1/topics/" + t + "/messages?limit=101", "", 400, "limit"},
      {"GET", "/api/v1/groups", "", 200, g},
      {"GET", "/api/v1/groups?cluster=nope", "", 404, "nope"},
      {"GET", described, "", 200, "committedOffset"},
      {"GET", "/api/v1/groups/http.nobody?cluster=" + c, "", 404, "http.nobody"},
      {"POST", "/api/v1/groups/" + g + "/seek", R"({"to": {"earliest": true}})", 200,
       "offsets"},
      {"POST", "/api/v1/groups/" + g + "/seek", R"({"to": {}})", 400, "to: required"},
      {"POST", "/api/v1/groups/" + g + "/pause", "", 200, "{}"},
      {"POST", "/api/v1/groups/" + g + "/pause", R"({"group": "x"})", 400,
       "give it once"},
      {"POST", "/api/v1/groups/" + g + "/resume", "", 200, "{}"},
      {"POST", "/api/v1/groups/" + g + "/resume", R"({"group": "x"})", 400,
       "give it once"},
      {"PUT", "/api/v1/groups/" + g + "/filter", R"({"filter": "key = \"a\""})", 200,
       "{}"},
      {"PUT", "/api/v1/groups/" + g + "/filter", R"({"filter": "key =="})", 400,
       "column"},
      {"PUT", "/api/v1/groups/" + g + "/filter", R"({"filter": ""})", 200, "{}"},
      {"GET", "/api/v1/routes", "", 200, c},
      {"GET", "/api/v1/routes?x=1", "", 400, R"(query parameter \"x\")"},
      {"PUT", "/api/v1/routes", json{{"topic", "http2.*"}, {"write", {c}}}.dump(), 200,
       "http2.*"},
      {"PUT", "/api/v1/routes", json{{"topic", "http2.*"}, {"write", {"nope"}}}.dump(),
       400, "nope"},
      {"DELETE", "/api/v1/routes/http2.*", "", 200, "{}"},
      {"DELETE", "/api/v1/routes/http2.*", "", 404, "http2.*"},
      {"GET", "/api/v1/mirrors", "", 200, "jobs"},
      {"GET", "/api/v1/mirrors?x=1", "", 400, R"(query parameter \"x\")"},
      {"POST", "/api/v1/mirrors", job.dump(), 200, "http-copy"},
      {"POST", "/api/v1/mirrors", bad_job.dump(), 400, "bad name"},
      {"GET", "/api/v1/mirrors/http-copy", "", 200, "partitions"},
      {"GET", "/api/v1/mirrors/nope", "", 404, "nope"},
      {"DELETE", "/api/v1/mirrors/http-copy", "", 200, "{}"},
      {"DELETE", "/api/v1/mirrors/nope", "", 404, "nope"},
      {"GET", "/api/v1/migrations", "", 200, "migrations"},
      {"GET", "/api/v1/migrations?stage=bogus", "", 400, "bogus"},
      {"POST", "/api/v1/migrations",
       json{{"topic", t}, {"from", c}, {"to", "nope"}}.dump(), 404, "nope"},
      {"POST", "/api/v1/migrations",
       json{{"topic", t}, {"from", c}, {"to", "spare"}}.dump(), 200, "mirroring"},
      {"GET", "/api/v1/migrations/" + t, "", 200, "mirroring"},
      {"GET", "/api/v1/migrations/http.none", "", 404, "http.none"},
      {"GET", "/api/v1/migrations?stage=mirroring", "", 200, t},
      {"POST", "/api/v1/migrations/" + t + "/advance", R"({"stage": "sideways"})", 400,
       "sideways"},
      {"POST", "/api/v1/migrations/" + t + "/advance", R"({"stage": "consumers"})", 200,
       g},
      {"POST", "/api/v1/migrations/" + t + "/rollback", "", 200, "rolled-back"},
      {"POST", "/api/v1/migrations/http.none/rollback", "", 404, "http.none"},
      {"POST", "/api/v1/acls",
       R"({"principal": "tenant-b", "resource": "topic:x", "operations": ["publish"]})",
       200, "tenant-b"},
      {"POST", "/api/v1/acls",
       R"({"principal": "tenant-b", "resource": "topic:", "operations": ["publish"]})",
       400, "needs a glob"},
      {"GET", "/api/v1/acls", "", 200, "runtime"},
      {"GET", "/api/v1/acls?x=1", "", 400, R"(query parameter \"x\")"},
      {"DELETE", "/api/v1/acls?principal=tenant-b&resource=topic:x&operations=publish",
       "", 200, "tenant-b"},
      {"DELETE", "/api/v1/acls?principal=tenant-b&resource=topic:x&operations=publish",
       "", 404, "no runtime rule"},
      {"DELETE", "/api/v1/topics/" + t, "", 200, "{}"},
      {"DELETE", "/api/v1/topics/http.none", "", 404, "http.none"},
  });

  std::map<std::string, std::set<bool>> outcomes;  // method -> {succeeded}
  for (const RouteCall& call : done) {
    const std::string path = call.path.substr(0, call.path.find('?'));
    admin_http::PathLookup lookup = admin_http::LookUpPath(call.verb, path);
    ASSERT_TRUE(lookup.match.has_value()) << call.verb << " " << path;
    outcomes[lookup.match->method].insert(call.status == 200);
  }
  for (const admin_http::ResourceRoute& route : admin_http::ResourceRoutes()) {
    EXPECT_EQ(outcomes[std::string(route.method)], (std::set<bool>{false, true}))
        << route.verb << " " << route.pattern << " needs a good and a bad call here";
  }
}

TEST_P(AdminHttpTest, OpenApiDocumentDescribesEveryAdminMethod) {
  auto node = Node("");
  ASSERT_NE(node, nullptr);
  Answer openapi = Call(*node, "GET", "/api/v1/openapi.json");
  ASSERT_EQ(openapi.status, 200);
  ASSERT_TRUE(openapi.body.is_object());
  EXPECT_EQ(openapi.body["openapi"], "3.0.3");
  const auto* admin =
      v1::GetNodeRequest::descriptor()->file()->FindServiceByName("Admin");
  ASSERT_NE(admin, nullptr);
  for (int i = 0; i < admin->method_count(); ++i) {
    EXPECT_TRUE(
        openapi.body["paths"].contains("/api/v1/admin/" + admin->method(i)->name()))
        << admin->method(i)->name();
  }
  Answer self = Call(*node, "GET", "/api/v1/node");
  ASSERT_EQ(self.status, 200) << self.body;
  EXPECT_EQ(self.body["grpcAddress"], node->grpc_address());
  EXPECT_EQ(self.body["health"], "SERVING");
}

INSTANTIATE_TEST_SUITE_P(Backends, AdminHttpTest,
                         ::testing::Values(Backend::kEmbedded, Backend::kKafka),
                         BackendName);

}  // namespace
}  // namespace ferry
