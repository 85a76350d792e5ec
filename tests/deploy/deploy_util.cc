#include "tests/deploy/deploy_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

extern char** environ;

namespace veriface::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string RepoPath(const std::string& relative) { return SourceDir() + "/" + relative; }

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Which(const std::string& program) {
  const char* path = std::getenv("PATH");
  for (const auto dir : absl::StrSplit(path == nullptr ? "/usr/bin:/bin" : path, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(std::string(dir), "/", program);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

int PortOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return -1;
  return std::atoi(address.c_str() + colon + 1);
}

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::set<std::string> GlibcFiles() {
  std::set<std::string> names;
  const CommandResult listed = RunCommand({"/usr/bin/dpkg-query", "-L", "libc6"});
  std::istringstream lines(listed.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find(".so") != std::string::npos) names.insert(fs::path(line).filename().string());
  }
  return names;
}

// ---- the Dockerfile -------------------------------------------------------------------------------------------

std::vector<std::string> DockerStage::All(const std::string& keyword) const {
  std::vector<std::string> found;
  for (const DockerInstruction& i : instructions) {
    if (i.keyword == keyword) found.push_back(i.args);
  }
  return found;
}

std::string DockerStage::Last(const std::string& keyword) const {
  const std::vector<std::string> found = All(keyword);
  return found.empty() ? "" : found.back();
}

const DockerStage* Dockerfile::Stage(const std::string& name) const {
  for (const DockerStage& s : stages) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string Dockerfile::RootImage(const DockerStage& stage) const {
  std::string base = stage.base;
  for (int hops = 0; hops < 16; ++hops) {
    for (const auto& [name, value] : global_args) {
      const std::string placeholder = "${" + name + "}";
      for (size_t at = base.find(placeholder); at != std::string::npos; at = base.find(placeholder)) {
        base.replace(at, placeholder.size(), value);
      }
    }
    const DockerStage* parent = Stage(base);
    if (parent == nullptr) return base;
    base = parent->base;
  }
  return "(a cycle of stages)";
}

Dockerfile ParseDockerfile(const std::string& text) {
  // Docker joins lines ending in a backslash and drops comment lines, also in the middle of a continuation.
  std::vector<std::string> logical;
  std::string pending;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string trimmed(absl::StripAsciiWhitespace(line));
    if (trimmed.empty() || trimmed[0] == '#') continue;
    if (trimmed.back() == '\\') {
      pending += trimmed.substr(0, trimmed.size() - 1) + " ";
      continue;
    }
    logical.push_back(pending + trimmed);
    pending.clear();
  }
  if (!pending.empty()) logical.push_back(pending);

  Dockerfile file;
  for (const std::string& l : logical) {
    const size_t space = l.find_first_of(" \t");
    std::string keyword = l.substr(0, space);
    for (char& c : keyword) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::string args = space == std::string::npos ? "" : std::string(absl::StripAsciiWhitespace(l.substr(space)));
    if (keyword == "FROM") {
      DockerStage stage;
      const std::vector<std::string> words = Words(args);
      for (size_t i = 0; i < words.size(); ++i) {
        if (words[i].rfind("--", 0) == 0) continue;  // --platform=...
        if (stage.base.empty()) {
          stage.base = words[i];
        } else if ((words[i] == "AS" || words[i] == "as") && i + 1 < words.size()) {
          stage.name = words[++i];
        }
      }
      file.stages.push_back(stage);
    } else if (file.stages.empty()) {
      if (keyword == "ARG") {
        const size_t eq = args.find('=');
        file.global_args[args.substr(0, eq)] = eq == std::string::npos ? "" : args.substr(eq + 1);
      }
    } else {
      file.stages.back().instructions.push_back({keyword, args});
    }
  }
  return file;
}

std::vector<std::string> ExecForm(const std::string& json_array) {
  const nlohmann::json parsed = nlohmann::json::parse(json_array, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> argv;
  if (!parsed.is_array()) return argv;
  for (const auto& a : parsed) {
    if (a.is_string()) argv.push_back(a.get<std::string>());
  }
  return argv;
}

std::vector<std::string> Words(const std::string& text) {
  return absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

// ---- child processes ------------------------------------------------------------------------------------------

namespace {

// The test's environment with `changes` applied, as "K=V" strings.
std::vector<std::string> Environment(const std::map<std::string, std::string>& changes) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [k, v] : changes) {
    if (v.empty()) {
      env.erase(k);
    } else {
      env[k] = v;
    }
  }
  std::vector<std::string> flat;
  for (const auto& [k, v] : env) flat.push_back(k + "=" + v);
  return flat;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(const ChildOptions& options) {
  if (options.argv.empty() || options.argv[0].empty() || options.argv[0][0] != '/') {
    return absl::InvalidArgumentError("ChildProcess needs an absolute program path");
  }
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->log_path_ = options.log_path;
  // Everything the child needs is prepared here: after fork() it may only make system calls.
  std::vector<std::string> argv = options.argv;
  std::vector<std::string> envp = Environment(options.env);
  std::vector<char*> argv_p = Pointers(argv);
  std::vector<char*> envp_p = Pointers(envp);
  const int log_fd = ::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) return absl::InternalError(absl::StrCat("cannot open ", options.log_path));
  if (options.uid >= 0 && ::geteuid() == 0) {
    // The log must stay writable for the user the child becomes.
    if (::fchown(log_fd, options.uid, options.gid) != 0) return absl::InternalError("fchown of the log failed");
  }
  const bool drop = options.uid >= 0 && ::geteuid() == 0;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(126);
    if (drop) {
      const gid_t gid = static_cast<gid_t>(options.gid);
      if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(static_cast<uid_t>(options.uid)) != 0) {
        ::_exit(126);
      }
    }
    ::execve(argv_p[0], argv_p.data(), envp_p.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) return absl::InternalError("fork failed");
  child->pid_ = pid;
  return child;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !Exited().has_value()) {
    ::kill(pid_, SIGKILL);
    WaitFor(std::chrono::seconds(30));
  }
}

std::optional<int> ChildProcess::WaitFor(std::chrono::milliseconds limit) {
  const Clock::time_point until = Clock::now() + limit;
  while (!exit_code_.has_value()) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else if (r < 0) {
      exit_code_ = 255;
    } else if (Clock::now() >= until) {
      break;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return exit_code_;
}

std::optional<int> ChildProcess::Exited() { return WaitFor(std::chrono::milliseconds(0)); }

std::optional<int> ChildProcess::Terminate(std::chrono::seconds limit) {
  if (Exited().has_value()) return exit_code_;
  ::kill(pid_, SIGTERM);
  if (WaitFor(limit).has_value()) return exit_code_;
  ::kill(pid_, SIGKILL);
  WaitFor(std::chrono::seconds(30));
  return std::nullopt;
}

std::string ChildProcess::Log() const { return ReadText(log_path_); }

Outcome RunWithEnv(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                   std::chrono::seconds limit, const std::string& cwd) {
  TempDir dir;
  Outcome outcome;
  auto child = ChildProcess::Start({argv, cwd, env, dir.File("output")});
  if (!child.ok()) {
    outcome.output = std::string(child.status().message());
    return outcome;
  }
  const Clock::time_point until = Clock::now() + limit;
  std::optional<int> code;
  while (!(code = (*child)->Exited()).has_value() && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!code.has_value()) (*child)->Terminate(std::chrono::seconds(5));
  outcome.exit_code = code.value_or(-1);
  outcome.output = (*child)->Log();
  return outcome;
}

bool PollUntil(const std::function<bool()>& probe, std::chrono::seconds limit, std::chrono::milliseconds every) {
  const Clock::time_point until = Clock::now() + limit;
  while (true) {
    if (probe()) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(every);
  }
}

// ---- Prometheus -----------------------------------------------------------------------------------------------

std::string UrlEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

absl::StatusOr<nlohmann::json> PromQuery(int port, const std::string& expr) {
  const absl::StatusOr<std::string> body = HttpGet(port, "/api/v1/query?query=" + UrlEncode(expr));
  if (!body.ok()) return absl::Status(body.status().code(), absl::StrCat(expr, ": ", body.status().message()));
  const nlohmann::json answer = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object() || answer.value("status", "") != "success") {
    return absl::InternalError(absl::StrCat(expr, ": Prometheus answered ", body->substr(0, 500)));
  }
  return answer["data"];
}

absl::StatusOr<std::optional<double>> PromScalar(int port, const std::string& expr) {
  const absl::StatusOr<nlohmann::json> data = PromQuery(port, expr);
  if (!data.ok()) return data.status();
  const nlohmann::json& result = (*data)["result"];
  if (!result.is_array() || result.empty()) return std::optional<double>();
  if (result.size() > 1) return absl::InternalError(absl::StrCat(expr, ": more than one series: ", result.dump()));
  return std::optional<double>(std::stod(result[0]["value"][1].get<std::string>()));
}

std::set<std::string> VerifaceMetricsIn(const std::string& expr) {
  static const std::regex kName(R"(\bveriface_[a-zA-Z0-9_]+)");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), kName); it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  return names;
}

std::map<std::string, std::set<std::string>> ExposedMetrics(const std::string& exposition) {
  static const std::regex kLabel(R"(([a-zA-Z_][a-zA-Z0-9_]*)=")");
  std::map<std::string, std::set<std::string>> metrics;
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::vector<std::string> words = Words(line);
      if (words.size() < 4) continue;
      metrics[words[2]];
      if (words[3] == "histogram" || words[3] == "summary") {
        for (const char* suffix : {"_bucket", "_sum", "_count"}) metrics[words[2] + suffix];
      }
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    const std::string name = line.substr(0, name_end);
    std::set<std::string>& labels = metrics[name];
    if (name_end != std::string::npos && line[name_end] == '{') {
      const std::string label_text = line.substr(name_end, line.find('}') - name_end);
      for (auto it = std::sregex_iterator(label_text.begin(), label_text.end(), kLabel); it != std::sregex_iterator();
           ++it) {
        labels.insert((*it)[1].str());
      }
    }
  }
  return metrics;
}

std::string SubstituteGrafanaVariables(const std::string& expr, const std::string& job) {
  std::string out = expr;
  const std::pair<std::string, std::string> replacements[] = {
      {"$__rate_interval", "1m"}, {"$__interval", "15s"}, {"$instance", ".*"}, {"$job", job}};
  for (const auto& [from, to] : replacements) {
    for (size_t at = out.find(from); at != std::string::npos; at = out.find(from, at + to.size())) {
      out.replace(at, from.size(), to);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> DashboardExpressions(const nlohmann::json& dashboard) {
  std::vector<std::pair<std::string, std::string>> found;
  std::function<void(const nlohmann::json&)> visit = [&](const nlohmann::json& panels) {
    for (const auto& panel : panels) {
      if (panel.contains("panels")) visit(panel["panels"]);  // panels inside collapsed rows
      for (const auto& target : panel.value("targets", nlohmann::json::array())) {
        found.emplace_back(panel.value("title", ""), target.value("expr", ""));
      }
    }
  };
  visit(dashboard.value("panels", nlohmann::json::array()));
  return found;
}

std::vector<std::pair<std::string, std::string>> RuleExpressions(const YAML::Node& rules) {
  std::vector<std::pair<std::string, std::string>> found;
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) {
      const std::string name = rule["alert"] ? rule["alert"].as<std::string>() : rule["record"].as<std::string>();
      found.emplace_back(name, rule["expr"].as<std::string>());
    }
  }
  return found;
}

}  // namespace veriface::testing
