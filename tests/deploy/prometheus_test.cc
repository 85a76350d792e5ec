// The monitoring files against the real thing: a veriface-server from the build (default model, a gallery of
// the test's own, free loopback ports), its metrics port read directly, and a real Prometheus server (Debian's
// `prometheus`) scraping it with the project's alert rules loaded.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/deploy/deploy_util.h"
#include "tests/server/server_process.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kVerifyCalls = 3;

// Every PromQL expression of the dashboard and of the alert rules, named for messages.
std::vector<std::pair<std::string, std::string>> MonitoringExpressions() {
  std::vector<std::pair<std::string, std::string>> all;
  const nlohmann::json dashboard =
      nlohmann::json::parse(ReadText(RepoPath("deploy/grafana/dashboards/veriface.json")), nullptr, false);
  for (const auto& [title, expr] : DashboardExpressions(dashboard)) all.emplace_back("panel '" + title + "'", expr);
  for (const auto& [name, expr] : RuleExpressions(YAML::LoadFile(RepoPath("deploy/prometheus/alerts.yml")))) {
    all.emplace_back("alert " + name, expr);
  }
  return all;
}

// Makes calls through the `veriface` client: `kVerifyCalls` Verifies of one person, an enrolment, an
// Identify, and one Embed of a file that is no image (INVALID_ARGUMENT).
void MakeClientCalls(const ServerProcess& server, const TempDir& dir) {
  const std::string a = LfwImagePath("George_W_Bush", 1), b = LfwImagePath("George_W_Bush", 2);
  const std::vector<std::string> base = {ClientBinary(), "--server", server.address()};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  };
  for (int i = 0; i < kVerifyCalls; ++i) {
    const CommandResult r = run({"verify", a, b});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  const CommandResult enrolled = run({"enroll", "--id", "bush", a});
  ASSERT_EQ(enrolled.exit_code, 0) << enrolled.out << enrolled.err;
  const CommandResult identified = run({"identify", b});
  ASSERT_EQ(identified.exit_code, 0) << identified.out << identified.err;
  std::ofstream(dir.File("not-an-image.jpg")) << "these bytes are no image";
  const CommandResult refused = run({"embed", dir.File("not-an-image.jpg")});
  ASSERT_NE(refused.exit_code, 0) << refused.out << refused.err;
}

// Label names a selector right after a veriface metric name matches on: `veriface_x{a="1", b=~"2"}` -> x: {a, b}.
std::vector<std::pair<std::string, std::string>> SelectorLabels(const std::string& expr) {
  static const std::regex kSelector(R"((veriface_[a-zA-Z0-9_]+)\{([^}]*)\})");
  static const std::regex kMatcher(R"(([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=))");
  std::vector<std::pair<std::string, std::string>> found;
  for (auto s = std::sregex_iterator(expr.begin(), expr.end(), kSelector); s != std::sregex_iterator(); ++s) {
    const std::string metric = (*s)[1], body = (*s)[2];
    for (auto m = std::sregex_iterator(body.begin(), body.end(), kMatcher); m != std::sregex_iterator(); ++m) {
      found.emplace_back(metric, (*m)[1]);
    }
  }
  return found;
}

// Label names of `by (...)` and `without (...)` clauses.
std::set<std::string> GroupingLabels(const std::string& expr) {
  static const std::regex kBy(R"(\b(?:by|without)\s*\(([^)]*)\))");
  std::set<std::string> labels;
  for (auto g = std::sregex_iterator(expr.begin(), expr.end(), kBy); g != std::sregex_iterator(); ++g) {
    for (const auto part : absl::StrSplit((*g)[1].str(), ',', absl::SkipWhitespace())) {
      labels.insert(std::string(absl::StripAsciiWhitespace(part)));
    }
  }
  return labels;
}

TEST(ServerMetrics, TheServerExportsEveryMetricAndLabelTheDashboardAndAlertsUse) {
  TempDir dir;
  // A detection queue of two (room for the two photos of one Verify), so that a burst of concurrent calls is
  // refused (RESOURCE_EXHAUSTED) and the dropped-items counter appears: the server exports a labelled series
  // only once something has happened to it.
  auto server = ServerProcess::Start(
      dir.File("gallery.db"), {"--set", "inference.detect.max_queue_size=2", "--set", "inference.detect.max_batch=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  MakeClientCalls(**server, dir);
  const CommandResult burst =
      RunCommand({ClientBinary(), "--server", (*server)->address(), "load", LfwImagePath("George_W_Bush", 1), "--mix",
                  "embed=1", "-c", "16", "-n", "48", "--warmup", "0"});
  EXPECT_TRUE(absl::StrContains(burst.out + burst.err, "RESOURCE_EXHAUSTED")) << burst.out << burst.err;
  const absl::StatusOr<std::string> exposition = HttpGet((*server)->metrics_port(), "/metrics");
  ASSERT_TRUE(exposition.ok()) << exposition.status();
  const auto exported = ExposedMetrics(*exposition);
  EXPECT_GT(MetricValue(*exposition, "veriface_batch_dropped_total", {{"reason", "queue_full"}, {"stage", "detect"}}),
            0);

  // Labels Prometheus adds or that histograms carry, besides the server's own.
  std::set<std::string> known_labels = {"job", "instance", "le"};
  for (const auto& [name, labels] : exported) known_labels.insert(labels.begin(), labels.end());

  const auto expressions = MonitoringExpressions();
  ASSERT_GT(expressions.size(), 10u);
  for (const auto& [where, expr] : expressions) {
    for (const std::string& metric : VerifaceMetricsIn(expr)) {
      EXPECT_TRUE(exported.count(metric)) << where << " uses " << metric << ", which the server does not export";
    }
    for (const auto& [metric, label] : SelectorLabels(expr)) {
      if (label == "job" || label == "instance") continue;
      const auto it = exported.find(metric);
      // A family with no sample yet shows no labels; its name was checked above.
      if (it == exported.end() || it->second.empty()) continue;
      EXPECT_TRUE(it->second.count(label))
          << where << " selects " << metric << " by '" << label << "', a label it does not have";
    }
    for (const std::string& label : GroupingLabels(expr)) {
      EXPECT_TRUE(known_labels.count(label)) << where << " groups by '" << label << "', which no metric has";
    }
  }
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->log();
}

// A Prometheus server on a free loopback port, scraping `targets` (job veriface) every second with the project's
// alert rules.
class PrometheusServer {
 public:
  static absl::StatusOr<std::unique_ptr<PrometheusServer>> Start(const std::string& dir,
                                                                 const std::vector<std::string>& targets) {
    const std::string binary = Which("prometheus");
    if (binary.empty()) {
      return absl::NotFoundError("prometheus not found: install Debian's prometheus package (deploy/setup.sh does)");
    }
    const std::string config = dir + "/prometheus.yml";
    std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          << "rule_files:\n  - " << RepoPath("deploy/prometheus/alerts.yml") << "\n"
                          << "scrape_configs:\n  - job_name: veriface\n    static_configs:\n"
                          << "      - targets: [\"" << absl::StrJoin(targets, "\", \"") << "\"]\n";
    std::string last_log;
    // The port is free when chosen but may be taken before Prometheus binds it: then it exits, and we retry.
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::unique_ptr<PrometheusServer> p(new PrometheusServer());
      p->port_ = FreeLoopbackPort();
      ChildOptions options;
      options.argv = {binary, "--config.file=" + config, absl::StrCat("--storage.tsdb.path=", dir, "/data", attempt),
                      absl::StrCat("--web.listen-address=127.0.0.1:", p->port_)};
      options.log_path = absl::StrCat(dir, "/prometheus", attempt, ".log");
      auto child = ChildProcess::Start(options);
      if (!child.ok()) return child.status();
      p->process_ = std::move(*child);
      const bool ready =
          PollUntil([&] { return HttpGet(p->port_, "/-/ready").ok() || p->process_->Exited().has_value(); },
                    std::chrono::seconds(120));
      if (ready && !p->process_->Exited().has_value()) return p;
      last_log = p->process_->Log();
    }
    return absl::UnavailableError("Prometheus did not start; its log:\n" + last_log);
  }

  int port() const { return port_; }
  ChildProcess& process() { return *process_; }

  // Polls GET `path` of the HTTP API until `done` holds for its JSON answer; `last` keeps the last answer.
  bool WaitForApi(const std::string& path, const std::function<bool(const nlohmann::json&)>& done,
                  nlohmann::json* last) {
    return PollUntil(
        [&] {
          const auto body = HttpGet(port_, path);
          if (!body.ok()) return false;
          *last = nlohmann::json::parse(*body, nullptr, false);
          return done(*last);
        },
        std::chrono::seconds(120));
  }

  // Polls `expr` until it has one sample equal to `want`; the last value seen otherwise.
  bool WaitForValue(const std::string& expr, double want, std::string* last) {
    return PollUntil(
        [&] {
          const auto v = PromScalar(port_, expr);
          *last = !v.ok() ? v.status().ToString() : v->has_value() ? std::to_string(**v) : "(no sample)";
          return v.ok() && v->has_value() && **v == want;
        },
        std::chrono::seconds(120));
  }

 private:
  PrometheusServer() = default;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// Every dashboard panel titled in `titles` exists and, run by `prom`, shows data within a minute.
void ExpectPanelsShowData(const PrometheusServer& prom, const std::vector<const char*>& titles) {
  const auto panels = DashboardExpressions(
      nlohmann::json::parse(ReadText(RepoPath("deploy/grafana/dashboards/veriface.json")), nullptr, false));
  for (const char* title : titles) {
    bool found = false;
    for (const auto& [panel, expr] : panels) {
      if (panel != title) continue;
      found = true;
      const std::string query = SubstituteGrafanaVariables(expr, "veriface");
      EXPECT_TRUE(PollUntil(
          [&] {
            const auto answer = PromQuery(prom.port(), query);
            return answer.ok() && !(*answer)["result"].empty();
          },
          std::chrono::seconds(60)))
          << "panel '" << title << "' shows nothing: " << query;
    }
    EXPECT_TRUE(found) << "no panel titled '" << title << "'";
  }
}

TEST(RealPrometheus, ScrapesTheServerCountsTheClientsCallsAndRunsTheDashboardAndAlerts) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.File("gallery.db"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto prometheus = PrometheusServer::Start(dir.path(), {absl::StrCat("127.0.0.1:", (*server)->metrics_port())});
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  PrometheusServer& prom = **prometheus;
  std::string last;

  // Scraped at least once before the calls, and no Verify counted yet.
  ASSERT_TRUE(prom.WaitForValue(R"(up{job="veriface"})", 1, &last)) << last << "\n" << prom.process().Log();
  const auto before = PromScalar(prom.port(), R"(sum(veriface_rpc_requests_total{job="veriface", method="Verify"}))");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE(before->has_value() && **before != 0) << "Verify counted before any call: " << **before;

  MakeClientCalls(**server, dir);

  // The counters moved by exactly the calls made, as Prometheus sees them.
  EXPECT_TRUE(prom.WaitForValue(R"(sum(veriface_rpc_requests_total{job="veriface", method="Verify", code="OK"}))",
                                kVerifyCalls, &last))
      << last;
  EXPECT_TRUE(prom.WaitForValue(
      R"(sum(veriface_rpc_requests_total{job="veriface", method="Embed", code="INVALID_ARGUMENT"}))", 1, &last))
      << last;
  EXPECT_TRUE(prom.WaitForValue(R"(sum(veriface_rpc_duration_seconds_count{job="veriface", method="Verify"}))",
                                kVerifyCalls, &last))
      << last;
  EXPECT_TRUE(prom.WaitForValue(R"(sum(veriface_gallery_identities{job="veriface"}))", 1, &last)) << last;

  // Every dashboard and alert expression runs in this Prometheus, with Grafana's variables filled in.
  for (const auto& [where, expr] : MonitoringExpressions()) {
    const auto answer = PromQuery(prom.port(), SubstituteGrafanaVariables(expr, "veriface"));
    EXPECT_TRUE(answer.ok()) << where << ": " << answer.status();
  }
  // The panels about what just happened show data.
  ExpectPanelsShowData(
      prom, {"Requests", "RPC rate by method", "RPC errors by method and code", "Latency by method (p50, p90, p99)",
             "Queue depth by stage, calls in progress", "Batch size by stage (mean, p90)", "Gallery size", "Identities",
             "Model", "Store up", "Galleries", "Staleness by instance"});

  // The alert rules are loaded and evaluate without error.
  const size_t rule_count = RuleExpressions(YAML::LoadFile(RepoPath("deploy/prometheus/alerts.yml"))).size();
  nlohmann::json rules;
  EXPECT_TRUE(prom.WaitForApi(
      "/api/v1/rules",
      [&](const nlohmann::json& answer) {
        size_t healthy = 0;
        for (const auto& group : answer["data"]["groups"]) {
          for (const auto& rule : group["rules"]) healthy += rule.value("health", "") == "ok" ? 1 : 0;
        }
        return healthy == rule_count;
      },
      &rules))
      << rules.dump(1);
  // The alerts these calls must not raise: no server errors, nothing refused, the target up, its SQLite gallery
  // store reachable and current. (The latency and queue alerts depend on this machine's speed and may
  // legitimately be pending on a loaded one.)
  const std::set<std::string> quiet = {"VerifaceHighErrorRate", "VerifaceOverloaded", "VerifaceDown",
                                       "VerifaceGalleryStoreDown", "VerifaceGalleryStale"};
  for (const auto& group : rules["data"]["groups"]) {
    for (const auto& rule : group["rules"]) {
      const std::string name = rule.value("name", "");
      if (!quiet.count(name)) continue;
      EXPECT_TRUE(rule["alerts"].empty()) << name << " is active: " << rule["alerts"].dump();
    }
  }

  // Stopping the server (cleanly) makes VerifaceDown pending for this target.
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->log();
  nlohmann::json alerts;
  EXPECT_TRUE(prom.WaitForApi(
      "/api/v1/alerts",
      [](const nlohmann::json& answer) {
        for (const auto& a : answer["data"]["alerts"]) {
          if (a["labels"].value("alertname", "") == "VerifaceDown" && a.value("state", "") == "pending") return true;
        }
        return false;
      },
      &alerts))
      << alerts.dump(1);

  const std::optional<int> code = prom.process().Terminate(std::chrono::seconds(60));
  EXPECT_EQ(code, std::optional<int>(0)) << prom.process().Log();
}

// Whether one of the alert's instances is pending or firing for `instance`.
bool AlertActiveFor(const nlohmann::json& alerts_answer, const std::string& alert, const std::string& instance) {
  for (const auto& a : alerts_answer["data"]["alerts"]) {
    if (a["labels"].value("alertname", "") == alert && a["labels"].value("instance", "") == instance) return true;
  }
  return false;
}

// The PostgreSQL variant as docker-compose.postgres.yml runs it, without containers: a real PostgreSQL 15, two
// servers started with deploy/compose/veriface-postgres.yaml (their addresses, the DSN and the password file
// pointed at this machine's), and a real Prometheus scraping both with the project's rules. An enrolment on one
// shows on the dashboard's replication panels of the other; stopping PostgreSQL leaves reads and health serving,
// fails writes UNAVAILABLE, and turns the store-down alert on for both; PostgreSQL back, the store is up again.
TEST(RealPrometheusOnPostgres, TwoReplicasShowReplicationAndAnOutageOnTheDashboardAndAlerts) {
  if (!PostgresInstalled()) GTEST_SKIP() << "PostgreSQL 15 is not installed (deploy/setup.sh installs it)";
  TempDir dir;
  PostgresServerOptions pg_options;
  pg_options.fsync = false;
  auto pg = PostgresServer::Start(pg_options);
  ASSERT_TRUE(pg.ok()) << pg.status();
  const std::string password_file = dir.File("postgres-password");
  std::ofstream(password_file) << (*pg)->password() << "\n";  // with the newline `openssl rand` leaves

  const std::vector<std::string> args = {"--config",       RepoPath("deploy/compose/veriface-postgres.yaml"),
                                         "--postgres-dsn", (*pg)->conninfo(),
                                         "--set",          "gallery.postgres.password_file=" + password_file};
  auto a = ServerProcess::Start(dir.File("unused-a.db"), args);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = ServerProcess::Start(dir.File("unused-b.db"), args);
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string instance_a = absl::StrCat("127.0.0.1:", (*a)->metrics_port());
  const std::string instance_b = absl::StrCat("127.0.0.1:", (*b)->metrics_port());
  auto prometheus = PrometheusServer::Start(dir.path(), {instance_a, instance_b});
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  PrometheusServer& prom = **prometheus;
  std::string last;
  ASSERT_TRUE(prom.WaitForValue(R"(count(up{job="veriface"} == 1))", 2, &last)) << last << "\n" << prom.process().Log();
  auto client = [&](const ServerProcess& server, std::vector<std::string> args) {
    std::vector<std::string> argv = {ClientBinary(), "--server", server.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  };
  const std::string photo = LfwImagePath("George_W_Bush", 1), other = LfwImagePath("George_W_Bush", 2);

  // An enrolment through a reaches b: b applies it and observes its lag; both count one identity.
  const CommandResult enrolled = client(**a, {"enroll", "--id", "bush", photo});
  ASSERT_EQ(enrolled.exit_code, 0) << enrolled.out << enrolled.err;
  EXPECT_TRUE(prom.WaitForValue(
      absl::StrCat(R"(veriface_gallery_replication_lag_seconds_count{instance=")", instance_b, R"("} > bool 0)"), 1,
      &last))
      << last << "\n"
      << (*b)->log();
  EXPECT_TRUE(prom.WaitForValue(R"(min(veriface_gallery_identities{job="veriface"}))", 1, &last)) << last;
  EXPECT_TRUE(prom.WaitForValue(R"(min(veriface_gallery_store_up{job="veriface"}))", 1, &last)) << last;
  const CommandResult identified = client(**b, {"identify", other});
  EXPECT_EQ(identified.exit_code, 0) << identified.out << identified.err;
  EXPECT_TRUE(absl::StrContains(identified.out, "bush")) << identified.out;

  // The store's panels show both replicas.
  ExpectPanelsShowData(prom, {"Store up", "Store up by instance", "Replication lag (p50, p99)", "Staleness by instance",
                              "Changes applied from other replicas", "Galleries", "Gallery size"});
  nlohmann::json alerts;
  ASSERT_TRUE(prom.WaitForApi(
      "/api/v1/alerts", [](const nlohmann::json& answer) { return answer.is_object(); }, &alerts));
  for (const char* alert : {"VerifaceGalleryStoreDown", "VerifaceGalleryStale", "VerifaceGalleryReplicationLagHigh"}) {
    for (const std::string& instance : {instance_a, instance_b}) {
      EXPECT_FALSE(AlertActiveFor(alerts, alert, instance)) << alert << " on " << instance << ": " << alerts.dump(1);
    }
  }

  // PostgreSQL stops: writes fail UNAVAILABLE, reads and health go on, and both replicas report the store down.
  ASSERT_TRUE((*pg)->Stop().ok());
  EXPECT_TRUE(prom.WaitForValue(R"(max(veriface_gallery_store_up{job="veriface"}))", 0, &last)) << last << "\n"
                                                                                                << (*a)->log();
  const CommandResult refused = client(**a, {"enroll", "--id", "blair", other});
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_TRUE(absl::StrContains(refused.out + refused.err, "UNAVAILABLE")) << refused.out << refused.err;
  const CommandResult verified = client(**b, {"verify", photo, other});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  const CommandResult identified_offline = client(**b, {"identify", other});
  EXPECT_EQ(identified_offline.exit_code, 0) << identified_offline.out << identified_offline.err;
  EXPECT_EQ((*a)->Health(), "SERVING");
  EXPECT_EQ((*b)->Health(), "SERVING");
  EXPECT_TRUE(prom.WaitForApi(
      "/api/v1/alerts",
      [&](const nlohmann::json& answer) {
        return AlertActiveFor(answer, "VerifaceGalleryStoreDown", instance_a) &&
               AlertActiveFor(answer, "VerifaceGalleryStoreDown", instance_b);
      },
      &alerts))
      << alerts.dump(1);
  EXPECT_TRUE(prom.WaitForValue(R"(min(veriface_gallery_stale_seconds{job="veriface"}) > bool 2)", 1, &last)) << last;

  // PostgreSQL back: the store is up on both again, and a write succeeds.
  ASSERT_TRUE((*pg)->Resume().ok());
  EXPECT_TRUE(prom.WaitForValue(R"(min(veriface_gallery_store_up{job="veriface"}))", 1, &last)) << last;
  const CommandResult enrolled_again = client(**a, {"enroll", "--id", "blair", other});
  EXPECT_EQ(enrolled_again.exit_code, 0) << enrolled_again.out << enrolled_again.err;

  EXPECT_EQ((*a)->Stop(), 0) << (*a)->log();
  EXPECT_EQ((*b)->Stop(), 0) << (*b)->log();
  EXPECT_EQ(prom.process().Terminate(std::chrono::seconds(60)), std::optional<int>(0)) << prom.process().Log();
}

}  // namespace
}  // namespace veriface::testing
