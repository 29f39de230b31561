// deploy/: the Prometheus alert rules and the Grafana dashboard (issue 21).
// promtool checks and unit-tests the rules; every metric the rules and the
// dashboard name must be one ferryd registers; and a real Prometheus
// scraping a real ferryd fires FerryClusterDown when the broker is killed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "httplib.h"
#include "testing/ferryd_process.h"
#include "testing/kafka_broker.h"

namespace ferry {
namespace {

using ::ferry::testing::FerrydProcess;
using ::ferry::testing::KafkaBroker;

const std::string kDeploy = FERRY_SOURCE_DIR "/deploy";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Metric family names ferryd registers: the "ferry_..." literals of its
// sources (tests excluded).
std::set<std::string> RegisteredFamilies() {
  std::set<std::string> names;
  const std::regex literal("\"(ferry_[a-z0-9_]+)\"");
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(FERRY_SOURCE_DIR "/src")) {
    const std::string path = entry.path().string();
    const auto extension = entry.path().extension();
    if ((extension != ".cc" && extension != ".h") || path.ends_with("_test.cc")) continue;
    const std::string text = ReadFile(path);
    for (std::sregex_iterator it(text.begin(), text.end(), literal), end; it != end;
         ++it) {
      names.insert((*it)[1]);
    }
  }
  return names;
}

// The metric names an expression text uses, histogram suffixes removed.
std::set<std::string> NamedMetrics(const std::string& text) {
  std::set<std::string> names;
  const std::regex metric("\\b(ferry_[a-z0-9_]+)");
  for (std::sregex_iterator it(text.begin(), text.end(), metric), end; it != end; ++it) {
    std::string name = (*it)[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (name.ends_with(suffix) && !name.ends_with("_total")) {
        name.resize(name.size() - std::string(suffix).size());
      }
    }
    names.insert(name);
  }
  return names;
}

TEST(Monitoring, AlertRulesPassPromtoolCheckAndTheirUnitTests) {
  auto check = testing::RunProcess(
      {"promtool", "check", "rules", kDeploy + "/prometheus/alerts.yml"});
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->exit_code, 0) << check->out << check->err;
  auto unit = testing::RunProcess({"promtool", "test", "rules", "alerts_test.yml"}, {},
                                  absl::Seconds(60), "", kDeploy + "/prometheus");
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->exit_code, 0) << unit->out << unit->err;
}

TEST(Monitoring, RulesAndDashboardNameOnlyMetricsFerrydRegisters) {
  const std::set<std::string> registered = RegisteredFamilies();
  ASSERT_TRUE(registered.contains("ferry_cluster_up"));

  const std::string dashboard_text = ReadFile(kDeploy + "/grafana/ferry.json");
  nlohmann::json dashboard = nlohmann::json::parse(dashboard_text, nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded()) << "deploy/grafana/ferry.json is not JSON";
  std::string expressions;
  int panels = 0;
  for (const auto& panel : dashboard["panels"]) {
    ++panels;
    ASSERT_TRUE(panel.contains("targets")) << panel["title"];
    for (const auto& target : panel["targets"]) {
      expressions += target["expr"].get<std::string>() + "\n";
    }
  }
  EXPECT_GE(panels, 10);

  for (const auto& [what, text] :
       {std::pair{std::string("dashboard"), expressions},
        std::pair{std::string("alert rules"),
                  ReadFile(kDeploy + "/prometheus/alerts.yml")}}) {
    const std::set<std::string> named = NamedMetrics(text);
    EXPECT_FALSE(named.empty()) << what;
    for (const std::string& name : named) {
      EXPECT_TRUE(registered.contains(name))
          << what << " names " << name << ", which ferryd does not register";
    }
  }
}

// The alert rules with every `for:` shortened, so the test need not wait
// minutes; the expressions are the shipped ones.
std::string FastRules() {
  return std::regex_replace(ReadFile(kDeploy + "/prometheus/alerts.yml"),
                            std::regex("for: [0-9]+[smh]"), "for: 2s");
}

TEST(Monitoring, PrometheusFiresClusterDownWhenTheBrokerIsKilled) {
  auto broker = KafkaBroker::Start("monitoring");
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto node = FerrydProcess::Start(testing::MainClusterYaml((*broker)->bootstrap()));
  ASSERT_TRUE(node.ok()) << node.status();

  auto [status, metrics] = (*node)->HttpGet("/metrics");
  ASSERT_EQ(status, 200);
  for (const char* family : {"ferry_cluster_up", "ferry_process_cpu_seconds",
                             "ferry_process_resident_memory_bytes"}) {
    EXPECT_NE(metrics.find(absl::StrCat("# TYPE ", family)), std::string::npos) << family;
  }

  const std::string dir = std::filesystem::temp_directory_path() /
                          absl::StrCat("ferry-prometheus-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/alerts.yml") << FastRules();
  std::ofstream(dir + "/prometheus.yml")
      << "global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
      << "rule_files: [alerts.yml]\n"
      << "scrape_configs:\n  - job_name: ferry\n    static_configs:\n"
      << "      - targets: [\"" << (*node)->http_address() << "\"]\n";
  auto ports = testing::PickFreePorts(1);
  ASSERT_TRUE(ports.ok()) << ports.status();
  const std::string web = absl::StrCat("127.0.0.1:", (*ports)[0]);
  auto prometheus = testing::Subprocess::Spawn(
      {"prometheus", "--config.file=" + dir + "/prometheus.yml",
       "--storage.tsdb.path=" + dir + "/data", "--web.listen-address=" + web},
      dir + "/prometheus.log");
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();

  httplib::Client client(absl::StrCat("http://", web));
  client.set_connection_timeout(std::chrono::seconds(2));
  // State of FerryClusterDown for the cluster "main": "", "pending" or "firing".
  auto cluster_down = [&client]() -> std::string {
    auto response = client.Get("/api/v1/alerts");
    if (!response || response->status != 200) return "";
    nlohmann::json body = nlohmann::json::parse(response->body, nullptr, false);
    if (body.is_discarded()) return "";
    for (const auto& alert : body["data"]["alerts"]) {
      if (alert["labels"]["alertname"] == "FerryClusterDown" &&
          alert["labels"]["cluster"] == "main") {
        return alert["state"].get<std::string>();
      }
    }
    return "";
  };
  // Healthy: scraped, and no alert for the cluster.
  const absl::Time healthy_until = absl::Now() + absl::Seconds(8);
  while (absl::Now() < healthy_until) {
    EXPECT_EQ(cluster_down(), "") << "the cluster is up";
    absl::SleepFor(absl::Milliseconds(500));
  }

  ASSERT_TRUE((*broker)->Kill9().ok());
  const absl::Time killed = absl::Now();
  std::string state;
  while (state != "firing" && absl::Now() - killed < absl::Seconds(60)) {
    absl::SleepFor(absl::Milliseconds(250));
    state = cluster_down();
  }
  EXPECT_EQ(state, "firing") << ReadFile(dir + "/prometheus.log");
  std::cout << "FerryClusterDown firing " << absl::FormatDuration(absl::Now() - killed)
            << " after kill -9 (rules' for: shortened to 2s, scrape and evaluation 1s)\n";
  prometheus->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry
