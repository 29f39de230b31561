#pragma once

// A real ferryd process for integration tests, configured through a YAML file
// the way an operator would, plus a runner for the `ferry` CLI.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "testing/process.h"

namespace ferry::testing {

// What an HTTP client of a node with listen.tls presents: the CA of the
// node's certificate and, for mutual TLS, its own certificate and key (PEM
// paths). All empty: plain HTTP.
struct HttpsClientFiles {
  std::string ca = {};
  std::string cert = {};
  std::string key = {};
};

class FerrydProcess {
 public:
  // Writes `yaml` (clusters, routes, ...; inside a test without a `control`
  // section, a control topic named after the test is added) plus listen
  // addresses on free
  // loopback ports to a config file and starts ferryd with it, in
  // `working_dir` (empty: a fresh directory, removed with the node, so nodes
  // without clusters do not share the embedded store ./ferry-data). Returns
  // once GET /healthz answers 200; fails with the node's log if it exits or
  // does not become healthy within 20 s. With `https`, the HTTP calls below
  // (the health check too) use HTTPS with those files. A port found free can
  // be taken by another process before ferryd binds it (suites run side by
  // side), so a node refused its listen address is started again on new
  // ports, at most 3 times.
  static absl::StatusOr<std::unique_ptr<FerrydProcess>> Start(
      const std::string& yaml, const std::map<std::string, std::string>& env = {},
      const std::string& working_dir = "", HttpsClientFiles https = {});

  // SIGKILLs the node if it is still running; removes its config and log
  // unless a test of the program failed.
  ~FerrydProcess();

  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& http_address() const { return http_address_; }
  Subprocess& process() { return *process_; }
  // Everything the node wrote to stdout and stderr so far.
  std::string Log() const;
  // Changes what the HTTP calls below present (another client identity).
  void set_https(HttpsClientFiles https) { https_ = std::move(https); }

  // GET http://<http_address><path>: {status code, body}; status -1 when the
  // listener does not answer.
  std::pair<int, std::string> HttpGet(const std::string& path) const;
  // `verb` (GET, POST, PUT, PATCH or DELETE) http://<http_address><path> with
  // `body` as application/json (when not empty) and extra `headers`: {status
  // code, body}; status -1 when the listener does not answer.
  std::pair<int, std::string> Http(
      const std::string& verb, const std::string& path, const std::string& body = "",
      const std::map<std::string, std::string>& headers = {}) const;

 private:
  static absl::StatusOr<std::unique_ptr<FerrydProcess>> StartOnce(
      const std::string& yaml, const std::map<std::string, std::string>& env,
      const std::string& working_dir, const HttpsClientFiles& https);

  FerrydProcess() = default;

  std::string grpc_address_;
  std::string http_address_;
  std::string config_path_;
  std::string log_path_;
  std::string own_working_dir_;  // created by Start; empty if given
  int failures_at_start_ = 0;    // test failures of the program before Start
  HttpsClientFiles https_;
  std::unique_ptr<Subprocess> process_;
};

// Runs the built `ferry` CLI with `args` (e.g. {"--server", addr, "status"})
// and `input` on its standard input.
absl::StatusOr<ProcessResult> RunFerryCli(
    const std::vector<std::string>& args,
    const std::map<std::string, std::string>& env = {}, const std::string& input = "");

// RunFerryCli with `--server <node's gRPC address>` first; a CLI that does
// not run is a test failure and exit code -1.
ProcessResult RunFerryCliOn(const FerrydProcess& node, std::vector<std::string> args,
                            const std::string& input = "");

// A bearer token made by `ferry token create` and its auth.tokens_file line.
struct Token {
  std::string token;
  std::string line;
};
// `ferry token create --principal P [--expires-in D]`; a CLI that fails or
// prints something else is a test failure and an empty Token.
Token CreateToken(const std::string& principal, const std::string& expires_in = "");

// Runs the built `ferryd` to completion, for start-up failure tests, in
// `working_dir` (empty: a fresh directory, removed afterwards).
absl::StatusOr<ProcessResult> RunFerryd(
    const std::vector<std::string>& args,
    const std::map<std::string, std::string>& env = {},
    absl::Duration timeout = absl::Seconds(30), const std::string& working_dir = "");

// One entry under `clusters:`: `  NAME: { type: kafka, bootstrap: "..." }`.
std::string KafkaClusterEntry(const std::string& name, const std::string& bootstrap);

// A `clusters:` section with one Kafka cluster named "main", which then
// serves every topic.
std::string MainClusterYaml(const std::string& bootstrap);

// Writes `content` to a fresh file in the test program's own temp
// directory, removed with what else is in it when the program exits (kept,
// node logs included, and its path printed, when a test failed); returns its
// path.
std::string WriteTempFile(const std::string& stem, const std::string& content);

}  // namespace ferry::testing
