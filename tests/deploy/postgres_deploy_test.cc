// The PostgreSQL variant of the deployment files: several replicas sharing one gallery in PostgreSQL
// (deploy/compose/docker-compose.postgres.yml with veriface-postgres.yaml, deploy/prometheus/prometheus-postgres.yml,
// deploy/k8s/postgres), and the monitoring of the gallery store. Checked with the real tools where they exist
// here (docker-compose, promtool, the server's own configuration loader, kubectl when installed) and against
// the single-replica SQLite files they extend, which must keep their one replica: the rule is that only a
// PostgreSQL gallery may have more than one, that no password is ever in a DSN or in the repository, and that
// the servers read it from a secret file.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/deploy/deploy_util.h"
#include "tests/server/server_process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kComposeFile[] = "deploy/compose/docker-compose.postgres.yml";
constexpr char kSqliteComposeFile[] = "deploy/compose/docker-compose.yml";
constexpr int kPostgresDefaultPort = 5432;

YAML::Node ImageConfig() { return YAML::LoadFile(RepoPath("deploy/docker/veriface.yaml")); }

std::string Str(const YAML::Node& node) { return node ? node.as<std::string>() : ""; }

// node[k1][k2]... without yaml-cpp's exception for indexing past a missing key: an undefined node then.
YAML::Node Get(const YAML::Node& node, std::initializer_list<const char*> path) {
  YAML::Node at = node;
  for (const char* key : path) {
    if (!at || !at.IsMap() || !at[key]) return YAML::Node(YAML::NodeType::Undefined);
    at.reset(at[key]);  // not `at = at[key]`, which would overwrite the node `at` refers to
  }
  return at;
}

// Two YAML trees with the same content (comments and layout aside).
bool SameYaml(const YAML::Node& a, const YAML::Node& b) { return YAML::Dump(a) == YAML::Dump(b); }

bool IsPostgres15(const std::string& image) {
  return image == "postgres:15" || absl::StartsWith(image, "postgres:15.") || absl::StartsWith(image, "postgres:15-");
}

// ---- DSNs ------------------------------------------------------------------------------------------------------

// libpq's keyword/value form, "host=db port=5432 user='a b'", as keyword -> value; a value may be single-quoted
// with backslash escapes, and spaces may surround '='. Malformed text gives what was read up to the fault.
std::map<std::string, std::string> ParseConninfo(const std::string& dsn) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < dsn.size() && absl::ascii_isspace(static_cast<unsigned char>(dsn[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= dsn.size()) break;
    std::string key;
    while (i < dsn.size() && dsn[i] != '=' && !absl::ascii_isspace(static_cast<unsigned char>(dsn[i]))) key += dsn[i++];
    skip_space();
    if (i >= dsn.size() || dsn[i] != '=') break;
    ++i;
    skip_space();
    std::string value;
    if (i < dsn.size() && dsn[i] == '\'') {
      for (++i; i < dsn.size() && dsn[i] != '\''; ++i) {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value += dsn[i];
      }
      ++i;
    } else {
      while (i < dsn.size() && !absl::ascii_isspace(static_cast<unsigned char>(dsn[i]))) {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value += dsn[i++];
      }
    }
    out[key] = value;
  }
  return out;
}

// Why `dsn` would carry a password ("" when it carries none): a password keyword in either of libpq's forms,
// or a user:password@ in a URI.
std::string PasswordIn(const std::string& dsn) {
  const std::string lower = absl::AsciiStrToLower(dsn);
  if (absl::StartsWith(lower, "postgres://") || absl::StartsWith(lower, "postgresql://")) {
    const std::string rest = dsn.substr(dsn.find("://") + 3);
    const std::string authority = rest.substr(0, rest.find_first_of("/?"));
    const size_t at = authority.rfind('@');
    if (at != std::string::npos && absl::StrContains(authority.substr(0, at), ":")) {
      return "the URI has user:password@";
    }
    const size_t query = rest.find('?');
    if (query != std::string::npos) {
      for (const auto part : absl::StrSplit(rest.substr(query + 1), '&')) {
        if (absl::StartsWith(absl::AsciiStrToLower(std::string(part)), "password=")) return "the URI has ?password=";
      }
    }
    return "";
  }
  return ParseConninfo(dsn).count("password") ? "it has a password keyword" : "";
}

TEST(PostgresDsn, TheCheckFindsAPasswordInEitherFormAndNothingWithout) {
  EXPECT_EQ(PasswordIn("host=postgres port=5432 dbname=veriface user=veriface"), "");
  EXPECT_EQ(PasswordIn("postgresql://veriface@postgres:5432/veriface?sslmode=require"), "");
  EXPECT_NE(PasswordIn("host=postgres password=secret"), "");
  EXPECT_NE(PasswordIn("host=postgres user=veriface password = 'a secret'"), "");
  EXPECT_NE(PasswordIn("postgresql://veriface:secret@postgres/veriface"), "");
  EXPECT_NE(PasswordIn("postgres://postgres/veriface?user=veriface&password=secret"), "");
  const auto parsed = ParseConninfo("host = db  user='v e\\'r' port=6543");
  EXPECT_EQ(parsed.at("host"), "db");
  EXPECT_EQ(parsed.at("user"), "v e'r");
  EXPECT_EQ(parsed.at("port"), "6543");
}

// ---- git ------------------------------------------------------------------------------------------------------

// Whether git ignores `relative` (a file that need not exist) in the source tree; nullopt, with the reason in
// `why`, when git is missing or the tree is no git checkout.
std::optional<bool> GitIgnores(const std::string& relative, std::string* why) {
  const std::string git = Which("git");
  if (git.empty()) {
    *why = "git not installed";
    return std::nullopt;
  }
  const CommandResult r = RunCommand({git, "-C", RepoPath(""), "check-ignore", "-q", "--no-index", relative});
  if (r.exit_code != 0 && r.exit_code != 1) {
    *why = "not a git checkout: " + r.err;
    return std::nullopt;
  }
  return r.exit_code == 0;
}

// ---- compose ---------------------------------------------------------------------------------------------------

YAML::Node Compose() { return YAML::LoadFile(RepoPath(kComposeFile)); }

// The veriface-server services: those running the image of the SQLite compose file's `veriface`.
std::vector<std::string> ReplicaServices(const YAML::Node& compose) {
  const std::string image = Str(YAML::LoadFile(RepoPath(kSqliteComposeFile))["services"]["veriface"]["image"]);
  std::vector<std::string> names;
  for (const auto& service : compose["services"]) {
    if (Str(service.second["image"]) == image) names.push_back(service.first.as<std::string>());
  }
  return names;
}

// "H:C", "IP:H:C" or "C" -> {host address and port ("" when unpublished), container port}.
std::pair<std::string, int> HostAndContainerPort(const std::string& mapping) {
  const size_t last = mapping.rfind(':');
  if (last == std::string::npos) return {"", std::stoi(mapping)};
  std::string host = mapping.substr(0, last);
  if (host.find(':') == std::string::npos) host = "0.0.0.0:" + host;
  return {host, std::stoi(mapping.substr(last + 1))};
}

// A service's "source:target[:mode]" volumes as target -> source.
std::map<std::string, std::string> Mounts(const YAML::Node& service) {
  std::map<std::string, std::string> mounts;
  for (const auto& v : service["volumes"]) {
    const std::vector<std::string> parts = absl::StrSplit(v.as<std::string>(), ':');
    if (parts.size() >= 2) mounts[parts[1]] = parts[0];
  }
  return mounts;
}

std::set<std::string> SecretsOf(const YAML::Node& service) {
  std::set<std::string> names;
  for (const auto& s : service["secrets"]) names.insert(s.IsMap() ? Str(s["source"]) : s.as<std::string>());
  return names;
}

// The configuration file a replica is started with: its `--config` argument, mounted from the repository.
YAML::Node ReplicaConfig(const YAML::Node& service, std::string* repo_file = nullptr) {
  const std::vector<std::string> command = service["command"].as<std::vector<std::string>>();
  EXPECT_EQ(command.size(), 2u);
  if (command.size() != 2 || command[0] != "--config") return YAML::Node();
  const auto mounts = Mounts(service);
  const auto it = mounts.find(command[1]);
  EXPECT_NE(it, mounts.end()) << command[1] << " is not mounted";
  if (it == mounts.end()) return YAML::Node();
  const std::string path = RepoPath("deploy/compose/" + it->second);
  EXPECT_TRUE(fs::is_regular_file(path)) << path;
  if (repo_file != nullptr) *repo_file = path;
  return YAML::LoadFile(path);
}

// "${VAR:-default}" -> "default"; anything else unchanged.
std::string DefaultOf(const std::string& value) {
  static const std::regex kVariable(R"(^\$\{[A-Za-z_][A-Za-z0-9_]*:?-(.*)\}$)");
  std::smatch m;
  return std::regex_match(value, m, kVariable) ? m[1].str() : value;
}

TEST(PostgresCompose, DockerComposeValidatesIt) {
  const std::string compose = Which("docker-compose");
  ASSERT_FALSE(compose.empty()) << "docker-compose not found: install Debian's docker-compose package";
  // The secret's file need not exist for the check: it is the operator's to write.
  const CommandResult r = RunCommand({compose, "-f", RepoPath(kComposeFile), "config", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(PostgresCompose, PostgresIs15WithAHealthcheckAVolumeAndItsPasswordFromASecret) {
  const YAML::Node compose = Compose();
  const YAML::Node db = compose["services"]["postgres"];
  ASSERT_TRUE(db) << "no service 'postgres'";
  EXPECT_TRUE(IsPostgres15(Str(db["image"]))) << db["image"];

  ASSERT_TRUE(Get(db, {"healthcheck", "test"})) << "postgres has no healthcheck";
  const std::vector<std::string> check = db["healthcheck"]["test"].as<std::vector<std::string>>();
  EXPECT_TRUE(std::find(check.begin(), check.end(), "pg_isready") != check.end()) << YAML::Dump(db["healthcheck"]);

  // The data on a named volume.
  const auto mounts = Mounts(db);
  ASSERT_TRUE(mounts.count("/var/lib/postgresql/data")) << "the data folder is on no volume";
  EXPECT_TRUE(compose["volumes"][mounts.at("/var/lib/postgresql/data")].IsDefined());

  // The password is a compose secret's file, never a value in the file.
  const YAML::Node env = db["environment"];
  ASSERT_TRUE(env.IsMap());
  EXPECT_FALSE(env["POSTGRES_PASSWORD"]) << "the password is written into the compose file";
  const std::string password_file = Str(env["POSTGRES_PASSWORD_FILE"]);
  ASSERT_TRUE(absl::StartsWith(password_file, "/run/secrets/")) << password_file;
  const std::string secret = password_file.substr(std::string("/run/secrets/").size());
  EXPECT_TRUE(SecretsOf(db).count(secret)) << secret;
  EXPECT_TRUE(compose["secrets"][secret]["file"]) << "secret " << secret << " is not read from a file";

  // Reachable from the other services only, or from the host's loopback.
  for (const auto& p : db["ports"]) {
    EXPECT_TRUE(absl::StartsWith(p.as<std::string>(), "127.0.0.1:")) << p << " publishes PostgreSQL beyond loopback";
  }
}

TEST(PostgresCompose, SeveralReplicasOfTheImageEachWithItsOwnHostPortsAfterTheDatabaseIsHealthy) {
  const YAML::Node compose = Compose();
  const YAML::Node sqlite = YAML::LoadFile(RepoPath(kSqliteComposeFile))["services"]["veriface"];
  const std::vector<std::string> replicas = ReplicaServices(compose);
  ASSERT_GE(replicas.size(), 2u) << "fewer than two veriface-server services";
  for (const char* name : {"veriface-a", "veriface-b"}) {
    EXPECT_TRUE(std::find(replicas.begin(), replicas.end(), name) != replicas.end()) << name;
  }

  std::set<std::string> host_ports;
  for (const auto& service : compose["services"]) {
    for (const auto& p : service.second["ports"]) {
      const std::string host = HostAndContainerPort(p.as<std::string>()).first;
      if (host.empty()) continue;
      const std::string port = host.substr(host.rfind(':') + 1);
      EXPECT_TRUE(host_ports.insert(port).second) << "host port " << port << " is published twice";
    }
  }
  for (const std::string& name : replicas) {
    SCOPED_TRACE(name);
    const YAML::Node service = compose["services"][name];
    // Built from the same Dockerfile as the SQLite file's server.
    EXPECT_TRUE(SameYaml(service["build"], sqlite["build"]));
    EXPECT_EQ(Str(Get(service, {"depends_on", "postgres", "condition"})), "service_healthy");

    const YAML::Node config = ReplicaConfig(service);
    ASSERT_TRUE(config.IsMap());
    std::set<int> container_ports;
    for (const auto& p : service["ports"]) container_ports.insert(HostAndContainerPort(p.as<std::string>()).second);
    EXPECT_EQ(container_ports,
              (std::set<int>{PortOf(Str(config["server"]["listen"])), PortOf(Str(config["metrics"]["listen"]))}));

    // PostgreSQL, reached by its compose service name, with the password from the database's own secret.
    EXPECT_EQ(Str(config["gallery"]["store"]), "postgres");
    const std::string dsn = Str(Get(config, {"gallery", "postgres", "dsn"}));
    EXPECT_EQ(PasswordIn(dsn), "") << dsn;
    const auto conninfo = ParseConninfo(dsn);
    ASSERT_TRUE(conninfo.count("host")) << dsn;
    EXPECT_TRUE(compose["services"][conninfo.at("host")]) << "the DSN's host is no compose service";
    EXPECT_EQ(conninfo.count("port") ? std::stoi(conninfo.at("port")) : kPostgresDefaultPort, kPostgresDefaultPort);
    const YAML::Node db_env = compose["services"]["postgres"]["environment"];
    EXPECT_EQ(conninfo.count("user") ? conninfo.at("user") : "", Str(db_env["POSTGRES_USER"]));
    EXPECT_EQ(conninfo.count("dbname") ? conninfo.at("dbname") : "", Str(db_env["POSTGRES_DB"]));
    const std::string password_file = Str(Get(config, {"gallery", "postgres", "password_file"}));
    EXPECT_EQ(password_file, Str(db_env["POSTGRES_PASSWORD_FILE"]));
    EXPECT_TRUE(SecretsOf(service).count(password_file.substr(password_file.rfind('/') + 1))) << password_file;

    // No password or DSN with one in the environment, and no gallery volume: the database holds the gallery.
    EXPECT_FALSE(Get(service, {"environment", "VERIFACE_POSTGRES_PASSWORD"}));
    EXPECT_EQ(PasswordIn(Str(Get(service, {"environment", "VERIFACE_POSTGRES_DSN"}))), "");
    const std::string gallery_dir = fs::path(Str(ImageConfig()["gallery"]["path"])).parent_path().string();
    EXPECT_FALSE(Mounts(service).count(gallery_dir)) << "a PostgreSQL replica mounts a gallery volume";
  }
}

TEST(PostgresCompose, TheReplicasConfigurationIsTheImagesWithTheGalleryInPostgres) {
  const YAML::Node compose = Compose();
  const YAML::Node image = ImageConfig();
  for (const std::string& name : ReplicaServices(compose)) {
    const YAML::Node config = ReplicaConfig(compose["services"][name]);
    ASSERT_TRUE(config.IsMap()) << name;
    for (const char* section : {"server", "metrics", "model"}) {
      EXPECT_TRUE(SameYaml(config[section], image[section])) << name << ": " << section << " differs from the image's";
    }
  }
}

TEST(PostgresCompose, ThePasswordFileIsGitIgnored) {
  const YAML::Node compose = Compose();
  for (const auto& secret : compose["secrets"]) {
    const std::string file = DefaultOf(Str(secret.second["file"]));
    ASSERT_FALSE(file.empty());
    ASSERT_FALSE(fs::path(file).is_absolute()) << file;
    const std::string relative = (fs::path("deploy/compose") / file).lexically_normal().string();
    std::string why;
    const std::optional<bool> ignored = GitIgnores(relative, &why);
    if (!ignored.has_value()) GTEST_SKIP() << why;
    EXPECT_TRUE(*ignored) << relative << " is not git-ignored: a password written there could be committed";
  }
}

TEST(PostgresCompose, PrometheusScrapesEveryReplicaAndGrafanaIsTheSqliteFilesOne) {
  const YAML::Node compose = Compose();
  const YAML::Node sqlite = YAML::LoadFile(RepoPath(kSqliteComposeFile));
  const YAML::Node prometheus = compose["services"]["prometheus"];
  EXPECT_EQ(Str(prometheus["image"]), Str(sqlite["services"]["prometheus"]["image"]));
  EXPECT_TRUE(SameYaml(compose["services"]["grafana"], sqlite["services"]["grafana"]));

  // The config file named on the command line, in the folder mounted at /etc/prometheus.
  std::string config_file;
  for (const auto& arg : prometheus["command"]) {
    if (absl::StartsWith(arg.as<std::string>(), "--config.file=")) config_file = arg.as<std::string>().substr(14);
  }
  ASSERT_TRUE(absl::StartsWith(config_file, "/etc/prometheus/")) << config_file;
  ASSERT_EQ(Mounts(prometheus)["/etc/prometheus"], "../prometheus");
  const std::string path = RepoPath("deploy/prometheus/" + config_file.substr(16));
  ASSERT_TRUE(fs::exists(path)) << path;

  const std::string promtool = Which("promtool");
  ASSERT_FALSE(promtool.empty()) << "promtool not found: install Debian's prometheus package";
  const CommandResult r = RunCommand({promtool, "check", "config", path});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out + r.err, "SUCCESS: 1 rule files found")) << r.out << r.err;

  // The job the alerts select scrapes exactly the replicas, each on its metrics port.
  std::set<std::string> expected, targets;
  for (const std::string& name : ReplicaServices(compose)) {
    const YAML::Node config = ReplicaConfig(compose["services"][name]);
    expected.insert(absl::StrCat(name, ":", PortOf(Str(config["metrics"]["listen"]))));
  }
  for (const auto& job : YAML::LoadFile(path)["scrape_configs"]) {
    if (Str(job["job_name"]) != "veriface") continue;
    for (const auto& group : job["static_configs"]) {
      for (const auto& t : group["targets"]) targets.insert(t.as<std::string>());
    }
  }
  EXPECT_EQ(targets, expected);
}

// ---- Kubernetes --------------------------------------------------------------------------------------------------

struct Kustomization {
  std::map<std::string, YAML::Node> objects;  // "Kind/name" -> object
  YAML::Node secret_generator;                // the kustomization's secretGenerator list
};

Kustomization LoadKustomization(const std::string& dir) {
  Kustomization k;
  const YAML::Node kustomization = YAML::LoadFile(RepoPath(dir + "/kustomization.yaml"));
  for (const auto& resource : kustomization["resources"]) {
    for (const YAML::Node& doc : YAML::LoadAllFromFile(RepoPath(dir + "/" + resource.as<std::string>()))) {
      k.objects[Str(doc["kind"]) + "/" + Str(doc["metadata"]["name"])] = doc;
    }
  }
  k.secret_generator.reset(Get(kustomization, {"secretGenerator"}));
  return k;
}

int CountKind(const Kustomization& k, const std::string& kind) {
  int n = 0;
  for (const auto& [key, object] : k.objects) n += absl::StartsWith(key, kind + "/") ? 1 : 0;
  return n;
}

YAML::Node ServerConfig(const Kustomization& k) {
  return YAML::Load(Str(k.objects.at("ConfigMap/veriface-config")["data"]["veriface.yaml"]));
}

YAML::Node ContainerNamed(const YAML::Node& pod, const std::string& name) {
  for (const auto& c : pod["containers"]) {
    if (Str(c["name"]) == name) return c;
  }
  return YAML::Node();
}

// The generated Secret's "key=value" literals and "key=file" sources, as key -> value or file.
std::map<std::string, std::string> GeneratorEntries(const YAML::Node& generator, const char* field) {
  std::map<std::string, std::string> entries;
  for (const auto& e : generator[field]) {
    const std::string s = e.as<std::string>();
    const size_t eq = s.find('=');
    if (eq == std::string::npos) {
      entries[fs::path(s).filename().string()] = s;  // a bare file is keyed by its name
    } else {
      entries[s.substr(0, eq)] = s.substr(eq + 1);
    }
  }
  return entries;
}

YAML::Node Generator(const Kustomization& k, const std::string& name) {
  for (const auto& g : k.secret_generator) {
    if (Str(g["name"]) == name) return g;
  }
  return YAML::Node();
}

// The path at which `pod`'s container sees key `key` of Secret `secret` ("" if it does not).
std::string SecretKeyPath(const YAML::Node& pod, const YAML::Node& container, const std::string& secret,
                          const std::string& key) {
  for (const auto& v : pod["volumes"]) {
    if (!v["secret"] || Str(v["secret"]["secretName"]) != secret) continue;
    std::string file = key;
    if (v["secret"]["items"]) {
      file.clear();
      for (const auto& item : v["secret"]["items"]) {
        if (Str(item["key"]) == key) file = Str(item["path"]);
      }
      if (file.empty()) continue;
    }
    for (const auto& m : container["volumeMounts"]) {
      if (Str(m["name"]) == Str(v["name"])) {
        EXPECT_TRUE(m["readOnly"] && m["readOnly"].as<bool>()) << Str(m["name"]) << " is mounted writable";
        return Str(m["mountPath"]) + "/" + file;
      }
    }
  }
  return "";
}

// The value of environment variable `name` when it is a Secret's key: {secret, key}.
std::pair<std::string, std::string> EnvFromSecret(const YAML::Node& container, const std::string& name) {
  for (const auto& e : container["env"]) {
    const YAML::Node ref = Get(e, {"valueFrom", "secretKeyRef"});
    if (Str(e["name"]) == name && ref) return {Str(ref["name"]), Str(ref["key"])};
  }
  return {"", ""};
}

std::string EnvValue(const YAML::Node& container, const std::string& name) {
  for (const auto& e : container["env"]) {
    if (Str(e["name"]) == name) return Str(e["value"]);
  }
  return "";
}

bool UsesAClaim(const Kustomization& k) {
  if (CountKind(k, "PersistentVolumeClaim") > 0) return true;
  for (const auto& v : k.objects.at("Deployment/veriface")["spec"]["template"]["spec"]["volumes"]) {
    if (v["persistentVolumeClaim"]) return true;
  }
  return false;
}

TEST(PostgresKubernetes, OnlyAPostgresGalleryHasSeveralReplicasAndOnlySqliteHasAClaim) {
  for (const char* dir : {"deploy/k8s", "deploy/k8s/postgres"}) {
    SCOPED_TRACE(dir);
    const Kustomization k = LoadKustomization(dir);
    ASSERT_TRUE(k.objects.count("Deployment/veriface"));
    const YAML::Node spec = k.objects.at("Deployment/veriface")["spec"];
    const YAML::Node gallery = ServerConfig(k)["gallery"];
    const std::string store = gallery["store"] ? Str(gallery["store"]) : "sqlite";  // the server's default
    const int replicas = spec["replicas"].as<int>();
    if (store == "sqlite") {
      EXPECT_EQ(replicas, 1) << "a SQLite gallery has one writer";
      EXPECT_TRUE(UsesAClaim(k)) << "the SQLite file is on no claim";
    } else {
      EXPECT_EQ(store, "postgres");
      EXPECT_GT(replicas, 1);
      EXPECT_FALSE(UsesAClaim(k)) << "the PostgreSQL Deployment uses a claim";
      EXPECT_EQ(Str(spec["strategy"]["type"]), "RollingUpdate");
    }
  }
  EXPECT_EQ(Str(ServerConfig(LoadKustomization("deploy/k8s/postgres"))["gallery"]["store"]), "postgres");
}

TEST(PostgresKubernetes, HoldsTheServerTheGeneratedSecretAndTheExampleDatabaseWithReferencesThatResolve) {
  const Kustomization k = LoadKustomization("deploy/k8s/postgres");
  for (const char* key : {"Deployment/veriface", "Service/veriface", "ConfigMap/veriface-config",
                          "PodDisruptionBudget/veriface", "StatefulSet/postgres", "Service/postgres"}) {
    EXPECT_TRUE(k.objects.count(key)) << key;
  }
  // No Secret in the repository: its password would be committed. It is generated from a git-ignored file.
  EXPECT_EQ(CountKind(k, "Secret"), 0) << "a Secret object is committed";
  const YAML::Node spec = k.objects.at("Deployment/veriface")["spec"];
  const YAML::Node labels = spec["template"]["metadata"]["labels"];
  for (const char* owner : {"Service/veriface", "PodDisruptionBudget/veriface"}) {
    const YAML::Node s = k.objects.at(owner)["spec"];
    const YAML::Node selector = s["selector"]["matchLabels"] ? s["selector"]["matchLabels"] : s["selector"];
    for (const auto& kv : selector) EXPECT_EQ(Str(labels[kv.first.as<std::string>()]), Str(kv.second)) << owner;
  }
  for (const auto& kv : spec["selector"]["matchLabels"])
    EXPECT_EQ(Str(labels[kv.first.as<std::string>()]), Str(kv.second));
  // The budget leaves replicas serving.
  const YAML::Node pdb = k.objects.at("PodDisruptionBudget/veriface")["spec"];
  if (pdb["maxUnavailable"]) {
    EXPECT_LT(pdb["maxUnavailable"].as<int>(), spec["replicas"].as<int>());
  }
  if (pdb["minAvailable"]) {
    EXPECT_LT(pdb["minAvailable"].as<int>(), spec["replicas"].as<int>());
  }
  // Both variants offer clients the same Service.
  EXPECT_TRUE(
      SameYaml(k.objects.at("Service/veriface"), LoadKustomization("deploy/k8s").objects.at("Service/veriface")))
      << "deploy/k8s/postgres/service.yaml differs from deploy/k8s/service.yaml";
  for (const auto& v : spec["template"]["spec"]["volumes"]) {
    if (v["configMap"]) {
      EXPECT_TRUE(k.objects.count("ConfigMap/" + Str(v["configMap"]["name"]))) << v["configMap"];
    }
    if (v["secret"]) {
      EXPECT_TRUE(Generator(k, Str(v["secret"]["secretName"]))) << v["secret"];
    }
  }
}

TEST(PostgresKubernetes, TheServersReadTheDsnAndThePasswordFromTheSecretAndNeverAPasswordInADsn) {
  const Kustomization k = LoadKustomization("deploy/k8s/postgres");
  const YAML::Node pod = k.objects.at("Deployment/veriface")["spec"]["template"]["spec"];
  const YAML::Node container = ContainerNamed(pod, "veriface");
  ASSERT_TRUE(container);
  const YAML::Node config = ServerConfig(k);

  // The DSN: the environment variable that overrides gallery.postgres.dsn, from the generated Secret.
  const auto [dsn_secret, dsn_key] = EnvFromSecret(container, "VERIFACE_POSTGRES_DSN");
  ASSERT_FALSE(dsn_secret.empty()) << "VERIFACE_POSTGRES_DSN does not come from a Secret";
  const YAML::Node generator = Generator(k, dsn_secret);
  ASSERT_TRUE(generator) << "no secretGenerator named " << dsn_secret;
  const auto literals = GeneratorEntries(generator, "literals");
  const auto files = GeneratorEntries(generator, "files");
  ASSERT_TRUE(literals.count(dsn_key)) << dsn_key;
  EXPECT_EQ(PasswordIn(literals.at(dsn_key)), "") << literals.at(dsn_key);
  EXPECT_EQ(PasswordIn(Str(Get(config, {"gallery", "postgres", "dsn"}))), "");
  for (const auto& e : container["env"]) {
    EXPECT_NE(Str(e["name"]), "VERIFACE_POSTGRES_PASSWORD") << "the password is in the environment, not a file";
    EXPECT_EQ(PasswordIn(Str(e["value"])), "") << Str(e["name"]);
  }

  // The password: a file of the Secret, from a file that is not in the repository, mounted where password_file
  // says.
  EXPECT_FALSE(literals.count("password")) << "the password is a literal of kustomization.yaml";
  ASSERT_TRUE(files.count("password")) << "the Secret has no key 'password' read from a file";
  EXPECT_FALSE(fs::path(files.at("password")).is_absolute());
  std::string why;
  const std::optional<bool> ignored = GitIgnores("deploy/k8s/postgres/" + files.at("password"), &why);
  EXPECT_TRUE(ignored.value_or(true)) << files.at("password") << " is not git-ignored: it holds the password";
  if (!ignored.has_value()) std::cerr << "not checked whether the password file is git-ignored: " << why << "\n";
  const std::string password_file = Str(Get(config, {"gallery", "postgres", "password_file"}));
  ASSERT_FALSE(password_file.empty()) << "gallery.postgres.password_file is not set";
  EXPECT_EQ(SecretKeyPath(pod, container, dsn_secret, "password"), password_file);
}

TEST(PostgresKubernetes, SharesTheSqliteVariantsImageProbesPortsSecurityAndResources) {
  const Kustomization sqlite = LoadKustomization("deploy/k8s");
  const Kustomization postgres = LoadKustomization("deploy/k8s/postgres");
  const YAML::Node base_pod = sqlite.objects.at("Deployment/veriface")["spec"]["template"];
  const YAML::Node pod = postgres.objects.at("Deployment/veriface")["spec"]["template"];
  const YAML::Node base = ContainerNamed(base_pod["spec"], "veriface");
  const YAML::Node container = ContainerNamed(pod["spec"], "veriface");
  ASSERT_TRUE(container);
  for (const char* field :
       {"image", "args", "ports", "startupProbe", "readinessProbe", "livenessProbe", "resources", "securityContext"}) {
    EXPECT_TRUE(SameYaml(container[field], base[field])) << field << " differs from deploy/k8s/deployment.yaml";
  }
  // Readiness asks the server (gRPC health), never the database: an outage must not empty the Service.
  EXPECT_TRUE(container["readinessProbe"]["grpc"]);
  EXPECT_TRUE(SameYaml(pod["metadata"]["annotations"], base_pod["metadata"]["annotations"]));
  for (const char* field : {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup"}) {
    EXPECT_TRUE(SameYaml(pod["spec"]["securityContext"][field], base_pod["spec"]["securityContext"][field])) << field;
  }
  EXPECT_EQ(pod["spec"]["terminationGracePeriodSeconds"].as<int>(),
            base_pod["spec"]["terminationGracePeriodSeconds"].as<int>());

  // The configuration is the SQLite variant's apart from the gallery; it is the file the server is told to read.
  const YAML::Node config = ServerConfig(postgres);
  const YAML::Node base_config = ServerConfig(sqlite);
  for (const char* section : {"server", "metrics", "model", "inference"}) {
    EXPECT_TRUE(SameYaml(config[section], base_config[section])) << section;
  }
  std::string config_mount;
  for (const auto& v : pod["spec"]["volumes"]) {
    if (!v["configMap"]) continue;
    for (const auto& m : container["volumeMounts"]) {
      if (Str(m["name"]) == Str(v["name"])) config_mount = Str(m["mountPath"]);
    }
  }
  EXPECT_EQ(container["args"][1].as<std::string>(), config_mount + "/veriface.yaml");
}

TEST(PostgresKubernetes, TheExampleDatabaseIsMarkedAsOneAndMatchesTheDsn) {
  const Kustomization k = LoadKustomization("deploy/k8s/postgres");
  const YAML::Node set = k.objects.at("StatefulSet/postgres");
  EXPECT_EQ(Str(set["metadata"]["labels"]["app.kubernetes.io/component"]), "example-database");
  const YAML::Node pod = set["spec"]["template"]["spec"];
  const YAML::Node container = ContainerNamed(pod, "postgres");
  ASSERT_TRUE(container);
  EXPECT_TRUE(IsPostgres15(Str(container["image"]))) << container["image"];
  EXPECT_TRUE(set["spec"]["volumeClaimTemplates"]) << "the example database keeps its data on no claim";

  // The DSN's host is the database's Service, on its port, and its user and database are the ones created.
  const YAML::Node deployment = k.objects.at("Deployment/veriface")["spec"]["template"]["spec"];
  const auto [secret, key] = EnvFromSecret(ContainerNamed(deployment, "veriface"), "VERIFACE_POSTGRES_DSN");
  const auto conninfo = ParseConninfo(GeneratorEntries(Generator(k, secret), "literals")[key]);
  ASSERT_TRUE(conninfo.count("host"));
  const std::string service_key = "Service/" + conninfo.at("host");
  ASSERT_TRUE(k.objects.count(service_key)) << "the DSN's host " << conninfo.at("host") << " is no Service";
  const YAML::Node service = k.objects.at(service_key);
  EXPECT_EQ(Str(service["metadata"]["labels"]["app.kubernetes.io/component"]), "example-database");
  EXPECT_EQ(Str(set["spec"]["serviceName"]), conninfo.at("host"));
  const int port = conninfo.count("port") ? std::stoi(conninfo.at("port")) : kPostgresDefaultPort;
  EXPECT_EQ(service["spec"]["ports"][0]["port"].as<int>(), port);
  bool target_found = false;
  for (const auto& p : container["ports"]) {
    if (Str(p["name"]) == Str(service["spec"]["ports"][0]["targetPort"])) {
      target_found = true;
      EXPECT_EQ(p["containerPort"].as<int>(), kPostgresDefaultPort);
    }
  }
  EXPECT_TRUE(target_found);
  for (const auto& kv : service["spec"]["selector"]) {
    EXPECT_EQ(Str(set["spec"]["template"]["metadata"]["labels"][kv.first.as<std::string>()]), Str(kv.second));
  }
  EXPECT_EQ(EnvValue(container, "POSTGRES_USER"), conninfo.count("user") ? conninfo.at("user") : "");
  EXPECT_EQ(EnvValue(container, "POSTGRES_DB"), conninfo.count("dbname") ? conninfo.at("dbname") : "");

  // Its password is the servers' Secret's, as a file.
  for (const auto& e : container["env"]) EXPECT_NE(Str(e["name"]), "POSTGRES_PASSWORD");
  EXPECT_EQ(EnvValue(container, "POSTGRES_PASSWORD_FILE"), SecretKeyPath(pod, container, secret, "password"));
  EXPECT_FALSE(EnvValue(container, "POSTGRES_PASSWORD_FILE").empty());
}

TEST(PostgresKubernetes, KubectlRendersBothVariantsWithTheGeneratedSecretReferenced) {
  const std::string kubectl = Which("kubectl");
  if (kubectl.empty()) GTEST_SKIP() << "kubectl not installed (not needed elsewhere): rendering not checked";
  const CommandResult sqlite = RunCommand({kubectl, "kustomize", RepoPath("deploy/k8s")});
  EXPECT_EQ(sqlite.exit_code, 0) << sqlite.err;

  // A copy with a password file of its own, as an operator writes it.
  TempDir dir;
  fs::copy(RepoPath("deploy/k8s/postgres"), dir.File("postgres"), fs::copy_options::recursive);
  fs::remove(dir.File("postgres/password.txt"));
  const CommandResult refused = RunCommand({kubectl, "kustomize", dir.File("postgres")});
  EXPECT_NE(refused.exit_code, 0) << "renders without a password file";
  std::ofstream(dir.File("postgres/password.txt")) << "not-a-real-password";
  const CommandResult rendered = RunCommand({kubectl, "kustomize", dir.File("postgres")});
  ASSERT_EQ(rendered.exit_code, 0) << rendered.err;

  std::string secret_name;
  std::vector<YAML::Node> docs = YAML::LoadAll(rendered.out);
  for (const YAML::Node& doc : docs) {
    if (Str(doc["kind"]) == "Secret") secret_name = Str(doc["metadata"]["name"]);
  }
  ASSERT_TRUE(absl::StartsWith(secret_name, "veriface-postgres-")) << secret_name;  // with its content hash
  int references = 0;
  for (const YAML::Node& doc : docs) {
    if (Str(doc["kind"]) != "Deployment" && Str(doc["kind"]) != "StatefulSet") continue;
    const YAML::Node pod = doc["spec"]["template"]["spec"];
    for (const auto& v : pod["volumes"]) {
      if (!v["secret"]) continue;
      EXPECT_EQ(Str(v["secret"]["secretName"]), secret_name);
      ++references;
    }
    for (const auto& c : pod["containers"]) {
      for (const auto& e : c["env"]) {
        if (!Get(e, {"valueFrom", "secretKeyRef"})) continue;
        EXPECT_EQ(Str(e["valueFrom"]["secretKeyRef"]["name"]), secret_name);
        ++references;
      }
    }
  }
  EXPECT_EQ(references, 3) << "the server's DSN and password and the example database's password";
}

// ---- the server accepts them (needs the server's PostgreSQL gallery store) ----------------------------------------

TEST(PostgresConfigurations, TheServerAcceptsTheComposeAndClusterConfigurations) {
  TempDir dir;
  const Kustomization k = LoadKustomization("deploy/k8s/postgres");
  const std::string cluster = dir.File("cluster.yaml");
  std::ofstream(cluster) << Str(k.objects.at("ConfigMap/veriface-config")["data"]["veriface.yaml"]);
  const YAML::Node deployment = k.objects.at("Deployment/veriface")["spec"]["template"]["spec"];
  const auto [secret, key] = EnvFromSecret(ContainerNamed(deployment, "veriface"), "VERIFACE_POSTGRES_DSN");
  const std::string cluster_dsn = GeneratorEntries(Generator(k, secret), "literals")[key];

  std::string compose_config;
  ReplicaConfig(Compose()["services"]["veriface-a"], &compose_config);
  ASSERT_FALSE(compose_config.empty());

  // As the pods run it: the DSN from the environment.
  const std::pair<std::string, std::vector<std::pair<std::string, std::string>>> runs[] = {
      {compose_config, {}}, {cluster, {{"VERIFACE_POSTGRES_DSN", cluster_dsn}}}};
  for (const auto& [path, env] : runs) {
    const CommandResult r = RunCommand({ServerBinary(), "--config", path, "--print-config"}, env);
    ASSERT_EQ(r.exit_code, 0) << path << ": " << r.out << r.err;
    const YAML::Node effective = YAML::Load(r.out);
    const YAML::Node written = YAML::LoadFile(path);
    EXPECT_EQ(Str(Get(effective, {"gallery", "store"})), "postgres") << path;
    EXPECT_EQ(Str(Get(effective, {"gallery", "postgres", "password_file"})),
              Str(Get(written, {"gallery", "postgres", "password_file"})))
        << path;
    const std::string dsn = env.empty() ? Str(Get(written, {"gallery", "postgres", "dsn"})) : cluster_dsn;
    EXPECT_EQ(Str(Get(effective, {"gallery", "postgres", "dsn"})), dsn) << path;
    EXPECT_EQ(Str(effective["server"]["listen"]), Str(written["server"]["listen"])) << path;
  }
}

// ---- monitoring of the gallery store ---------------------------------------------------------------------------

nlohmann::json Dashboard() {
  return nlohmann::json::parse(ReadText(RepoPath("deploy/grafana/dashboards/veriface.json")), nullptr, false);
}

TEST(GalleryStoreMonitoring, TheDashboardShowsTheStoreStalenessReplicationLagAndGalleries) {
  std::set<std::string> used;
  bool lag_p50 = false, lag_p99 = false;
  for (const auto& [title, expr] : DashboardExpressions(Dashboard())) {
    for (const std::string& m : VerifaceMetricsIn(expr)) used.insert(m);
    if (absl::StrContains(expr, "veriface_gallery_replication_lag_seconds_bucket")) {
      lag_p50 |= absl::StrContains(expr, "histogram_quantile(0.5,");
      lag_p99 |= absl::StrContains(expr, "histogram_quantile(0.99,");
    }
  }
  for (const char* wanted : {"veriface_gallery_store_up", "veriface_gallery_stale_seconds",
                             "veriface_gallery_replication_lag_seconds_bucket", "veriface_galleries",
                             "veriface_gallery_changes_applied_total"}) {
    EXPECT_TRUE(used.count(wanted)) << "the dashboard does not show " << wanted;
  }
  EXPECT_TRUE(lag_p50 && lag_p99) << "no p50 and p99 of the replication lag";
}

TEST(GalleryStoreMonitoring, TheGallerySizeIsNotAddedUpOverReplicasThatShareIt) {
  // Every replica reports the size of the one shared gallery: a sum would count it once per replica.
  static const std::regex kSummed(R"(\bsum\s*(by\s*\([^)]*\)\s*)?\(\s*)"
                                  R"((veriface_gallery_identities|veriface_gallery_templates|veriface_galleries)\b)");
  const auto expressions = DashboardExpressions(Dashboard());
  ASSERT_FALSE(expressions.empty());
  for (const auto& [title, expr] : expressions) {
    EXPECT_FALSE(std::regex_search(expr, kSummed)) << "panel '" << title << "': " << expr;
  }
  EXPECT_TRUE(std::regex_search("sum(veriface_gallery_identities{job=\"x\"})", kSummed));
}

TEST(GalleryStoreMonitoring, AlertsWatchTheStoreTheReplicationLagAndStaleness) {
  const YAML::Node rules = YAML::LoadFile(RepoPath("deploy/prometheus/alerts.yml"));
  std::map<std::string, YAML::Node> by_name;
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) {
      if (rule["alert"]) by_name[Str(rule["alert"])] = static_cast<const YAML::Node&>(rule);
    }
  }
  const struct {
    const char* alert;
    const char* metric;
    const char* for_duration;
  } wanted[] = {{"VerifaceGalleryStoreDown", "veriface_gallery_store_up", "1m"},
                {"VerifaceGalleryReplicationLagHigh", "veriface_gallery_replication_lag_seconds_bucket", "5m"},
                {"VerifaceGalleryStale", "veriface_gallery_stale_seconds", "1m"}};
  for (const auto& w : wanted) {
    ASSERT_TRUE(by_name.count(w.alert)) << w.alert;
    const std::string expr = Str(by_name[w.alert]["expr"]);
    EXPECT_TRUE(VerifaceMetricsIn(expr).count(w.metric)) << w.alert << ": " << expr;
    EXPECT_EQ(Str(by_name[w.alert]["for"]), w.for_duration) << w.alert;
  }
  EXPECT_TRUE(absl::StrContains(Str(by_name["VerifaceGalleryReplicationLagHigh"]["expr"]), "histogram_quantile(0.99"));
  EXPECT_TRUE(absl::StrContains(Str(by_name["VerifaceGalleryReplicationLagHigh"]["expr"]), "> 5"));
  EXPECT_TRUE(absl::StrContains(Str(by_name["VerifaceGalleryStale"]["expr"]), "> 60"));
}

}  // namespace
}  // namespace veriface::testing
