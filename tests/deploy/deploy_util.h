#pragma once
// Helpers for the tests of the container and deployment files: reading the Dockerfile the way Docker reads
// it, child processes with a working directory, an environment and a user of their own (the image's
// commands run from an unpacked image tree), Prometheus's HTTP API, and names in PromQL expressions.

#include <sys/types.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface::testing {

// ---- files --------------------------------------------------------------------------------------------------

// `relative` under the source tree.
std::string RepoPath(const std::string& relative);
std::string ReadText(const std::string& path);
// The program's absolute path from $PATH, or "" when it is not installed.
std::string Which(const std::string& program);
// The port of "host:port".
int PortOf(const std::string& address);
// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
int FreeLoopbackPort();
// Base names of glibc's shared objects (dpkg-query -L libc6): what the base image brings for itself.
std::set<std::string> GlibcFiles();

// ---- the Dockerfile -------------------------------------------------------------------------------------------

struct DockerInstruction {
  std::string keyword;  // upper case: RUN, COPY, ...
  std::string args;     // the rest, continuation lines joined
};

struct DockerStage {
  std::string base;  // as written after FROM, e.g. "runtime-${VARIANT}"
  std::string name;  // after AS, or ""
  std::vector<DockerInstruction> instructions;
  // Every instruction with this keyword, in order.
  std::vector<std::string> All(const std::string& keyword) const;
  // The last one (the one that counts for CMD, ENTRYPOINT, WORKDIR, USER, HEALTHCHECK), or "".
  std::string Last(const std::string& keyword) const;
};

struct Dockerfile {
  std::map<std::string, std::string> global_args;  // ARGs before the first FROM, with their defaults
  std::vector<DockerStage> stages;
  // The stage called `name`, or nullptr.
  const DockerStage* Stage(const std::string& name) const;
  // `stage`'s base with ${ARG}s replaced by their defaults, followed to the image at the root of the chain.
  std::string RootImage(const DockerStage& stage) const;
};

Dockerfile ParseDockerfile(const std::string& text);
// An exec-form argument list: ["veriface", "--server", ...].
std::vector<std::string> ExecForm(const std::string& json_array);
// Whitespace-separated words (the Dockerfile's RUN lines here use no quoting that matters).
std::vector<std::string> Words(const std::string& text);

// ---- child processes ------------------------------------------------------------------------------------------

struct ChildOptions {
  std::vector<std::string> argv;           // argv[0] is an absolute path
  std::string cwd;                         // "" keeps the test's
  std::map<std::string, std::string> env;  // set on top of the test's environment ("" removes the variable)
  std::string log_path;                    // stdout and stderr
  // Run as this user and group when the test runs as root (the image's USER); -1 keeps the test's.
  int uid = -1;
  int gid = -1;
};

class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const ChildOptions& options);
  ~ChildProcess();  // SIGKILL and reap when still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The exit code (128 + signal for a signal) once it has ended.
  std::optional<int> Exited();
  // SIGTERM, then waits up to `limit`; the exit code, or nullopt when it had to be killed.
  std::optional<int> Terminate(std::chrono::seconds limit);
  std::string Log() const;

 private:
  ChildProcess() = default;
  std::optional<int> WaitFor(std::chrono::milliseconds limit);

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// Runs `argv` to completion (up to `limit`) with `env` added; exit code and both outputs together.
struct Outcome {
  int exit_code = -1;  // -1: killed at the limit
  std::string output;
};
Outcome RunWithEnv(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                   std::chrono::seconds limit = std::chrono::seconds(120), const std::string& cwd = "");

// Repeats `probe` until it returns true or `limit` passes; true when it did.
bool PollUntil(const std::function<bool()>& probe, std::chrono::seconds limit,
               std::chrono::milliseconds every = std::chrono::milliseconds(250));

// ---- Prometheus -----------------------------------------------------------------------------------------------

std::string UrlEncode(const std::string& text);
// GET /api/v1/query?query=... on a Prometheus at 127.0.0.1:`port`; the decoded "data" of a successful answer.
absl::StatusOr<nlohmann::json> PromQuery(int port, const std::string& expr);
// The value of a one-sample vector answer, nullopt for an empty one.
absl::StatusOr<std::optional<double>> PromScalar(int port, const std::string& expr);

// The veriface_* metric names that `expr` refers to.
std::set<std::string> VerifaceMetricsIn(const std::string& expr);
// Every sample and family name a Prometheus text exposition declares (histograms as NAME, NAME_bucket,
// NAME_sum and NAME_count, whether or not a sample has been observed yet), with the label names seen per name.
std::map<std::string, std::set<std::string>> ExposedMetrics(const std::string& exposition);
// Grafana's variables replaced so that Prometheus can run the expression.
std::string SubstituteGrafanaVariables(const std::string& expr, const std::string& job);

// Every PromQL expression of the dashboard's panels, with the panel title.
std::vector<std::pair<std::string, std::string>> DashboardExpressions(const nlohmann::json& dashboard);
// Every rule of a Prometheus rules file: (alert or record name, expression).
std::vector<std::pair<std::string, std::string>> RuleExpressions(const YAML::Node& rules);

}  // namespace veriface::testing
