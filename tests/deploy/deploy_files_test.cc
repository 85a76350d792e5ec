// The deployment files checked with the real tools where they exist here (promtool, the server's own
// configuration loader) and against each other: the Dockerfile, deploy/docker/veriface.yaml, the compose file,
// the Prometheus and Grafana files and the Kubernetes manifests must agree on ports, paths, users and names.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/deploy/deploy_util.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;

std::string Promtool() {
  const std::string promtool = Which("promtool");
  EXPECT_FALSE(promtool.empty()) << "promtool not found: install Debian's prometheus package (deploy/setup.sh does)";
  return promtool;
}

YAML::Node ImageConfig() { return YAML::LoadFile(RepoPath("deploy/docker/veriface.yaml")); }

Dockerfile TheDockerfile() { return ParseDockerfile(ReadText(RepoPath("Dockerfile"))); }

// The stage the image is (the last one) and the one it copies the runtime tree from.
const DockerStage& RuntimeStage(const Dockerfile& file) { return file.stages.back(); }

// Kubernetes objects of the kustomization, by kind.
std::map<std::string, YAML::Node> KubernetesObjects() {
  std::map<std::string, YAML::Node> objects;
  const YAML::Node kustomization = YAML::LoadFile(RepoPath("deploy/k8s/kustomization.yaml"));
  for (const auto& resource : kustomization["resources"]) {
    for (const YAML::Node& doc : YAML::LoadAllFromFile(RepoPath("deploy/k8s/" + resource.as<std::string>()))) {
      objects[doc["kind"].as<std::string>()] = doc;
    }
  }
  return objects;
}

YAML::Node ContainerPort(const YAML::Node& container, const std::string& name) {
  for (const auto& port : container["ports"]) {
    if (port["name"].as<std::string>() == name) return port;
  }
  return YAML::Node();
}

// "2" -> 2, "500m" -> 0.5.
double Cpu(const std::string& quantity) {
  if (absl::EndsWith(quantity, "m")) return std::stod(quantity.substr(0, quantity.size() - 1)) / 1000;
  return std::stod(quantity);
}

// "1Gi" -> bytes.
double Bytes(const std::string& quantity) {
  const std::pair<const char*, double> units[] = {{"Ki", 1024.0}, {"Mi", 1024.0 * 1024}, {"Gi", 1024.0 * 1024 * 1024}};
  for (const auto& [suffix, factor] : units) {
    if (absl::EndsWith(quantity, suffix)) return std::stod(quantity) * factor;
  }
  return std::stod(quantity);
}

// ---- Prometheus ---------------------------------------------------------------------------------------------

TEST(PrometheusFiles, PromtoolAcceptsTheConfigAndLoadsItsRuleFile) {
  const CommandResult r = RunCommand({Promtool(), "check", "config", RepoPath("deploy/prometheus/prometheus.yml")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // The rule file is named relative to the config, as compose mounts the folder: promtool must have found it.
  EXPECT_TRUE(absl::StrContains(r.out + r.err, "SUCCESS: 1 rule files found")) << r.out << r.err;
}

TEST(PrometheusFiles, PromtoolAcceptsTheAlertRules) {
  const CommandResult r = RunCommand({Promtool(), "check", "rules", RepoPath("deploy/prometheus/alerts.yml")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(PrometheusFiles, AlertRuleUnitTestsPass) {
  const CommandResult r = RunCommand({Promtool(), "test", "rules", RepoPath("tests/deploy/alerts_test.yml")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out + r.err, "SUCCESS")) << r.out << r.err;
}

TEST(PrometheusFiles, EveryAlertHasAUnitTestWhereItFires) {
  const YAML::Node unit_tests = YAML::LoadFile(RepoPath("tests/deploy/alerts_test.yml"));
  std::set<std::string> fired;
  for (const auto& test : unit_tests["tests"]) {
    for (const auto& check : test["alert_rule_test"]) {
      if (check["exp_alerts"].size() > 0) fired.insert(check["alertname"].as<std::string>());
    }
  }
  const auto rules = RuleExpressions(YAML::LoadFile(RepoPath("deploy/prometheus/alerts.yml")));
  ASSERT_FALSE(rules.empty());
  std::set<std::string> names;
  for (const auto& [name, expr] : rules) {
    names.insert(name);
    EXPECT_TRUE(fired.count(name)) << name << " has no unit test in tests/deploy/alerts_test.yml where it fires";
  }
  // The three kinds the operators asked for.
  for (const char* wanted : {"VerifaceHighErrorRate", "VerifaceQueueBacklog", "VerifaceHighLatency"}) {
    EXPECT_TRUE(names.count(wanted)) << wanted;
  }
}

TEST(PrometheusFiles, ScrapesTheComposeServiceOnItsMetricsPort) {
  const YAML::Node config = YAML::LoadFile(RepoPath("deploy/prometheus/prometheus.yml"));
  const YAML::Node compose = YAML::LoadFile(RepoPath("deploy/compose/docker-compose.yml"));
  const int metrics_port = PortOf(ImageConfig()["metrics"]["listen"].as<std::string>());
  bool found = false;
  for (const auto& job : config["scrape_configs"]) {
    if (job["job_name"].as<std::string>() != "veriface") continue;
    found = true;
    const std::string target = job["static_configs"][0]["targets"][0].as<std::string>();
    EXPECT_EQ(PortOf(target), metrics_port) << target;
    const std::string host = target.substr(0, target.rfind(':'));
    EXPECT_TRUE(compose["services"][host]) << "the target's host '" << host << "' is no compose service";
  }
  // The alert rules select the job by this name.
  EXPECT_TRUE(found) << "no scrape job named 'veriface'";
}

// ---- Grafana ------------------------------------------------------------------------------------------------

nlohmann::json Dashboard() {
  return nlohmann::json::parse(ReadText(RepoPath("deploy/grafana/dashboards/veriface.json")), nullptr, false);
}

TEST(GrafanaFiles, DashboardIsWellFormed) {
  const nlohmann::json dashboard = Dashboard();
  ASSERT_TRUE(dashboard.is_object()) << "deploy/grafana/dashboards/veriface.json is not valid JSON";
  EXPECT_FALSE(dashboard.value("uid", "").empty());
  EXPECT_FALSE(dashboard.value("title", "").empty());
  std::set<int> ids;
  // Panels may not overlap on Grafana's 24-column grid.
  std::vector<nlohmann::json> boxes;
  for (const auto& panel : dashboard["panels"]) {
    const int id = panel.value("id", -1);
    EXPECT_TRUE(ids.insert(id).second) << "panel id " << id << " repeats";
    const auto& g = panel["gridPos"];
    const int x = g.value("x", -1), y = g.value("y", -1), w = g.value("w", 0), h = g.value("h", 0);
    EXPECT_TRUE(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24) << panel["title"] << ": " << g.dump();
    for (const auto& other : boxes) {
      const int ox = other.value("x", 0), oy = other.value("y", 0), ow = other.value("w", 0), oh = other.value("h", 0);
      EXPECT_FALSE(x < ox + ow && ox < x + w && y < oy + oh && oy < y + h)
          << panel["title"] << " overlaps another panel at " << other.dump();
    }
    boxes.push_back(g);
    if (panel.value("type", "") == "row") continue;
    ASSERT_TRUE(panel.contains("targets")) << panel["title"];
    for (const auto& target : panel["targets"]) {
      EXPECT_FALSE(target.value("expr", "").empty()) << panel["title"];
      // Every query goes to the dashboard's datasource variable, so that the provisioned one is used.
      EXPECT_EQ(target["datasource"].value("uid", ""), "${datasource}") << panel["title"];
    }
  }
  std::set<std::string> variables;
  for (const auto& v : dashboard["templating"]["list"]) variables.insert(v.value("name", ""));
  for (const auto& [title, expr] : DashboardExpressions(dashboard)) {
    for (const char* var : {"$job", "$instance"}) {
      if (absl::StrContains(expr, var)) {
        EXPECT_TRUE(variables.count(std::string(var).substr(1))) << var;
      }
    }
  }
}

TEST(GrafanaFiles, DashboardShowsTheSignalsOperatorsAskedFor) {
  std::set<std::string> used;
  for (const auto& [title, expr] : DashboardExpressions(Dashboard())) {
    for (const std::string& m : VerifaceMetricsIn(expr)) used.insert(m);
  }
  // RPC rate and errors, latency quantiles, queue depth, calls in progress, batch size, gallery size.
  for (const char* wanted : {"veriface_rpc_requests_total", "veriface_rpc_duration_seconds_bucket",
                             "veriface_batch_queue_depth", "veriface_calls_in_progress", "veriface_batch_size_bucket",
                             "veriface_gallery_identities", "veriface_gallery_templates"}) {
    EXPECT_TRUE(used.count(wanted)) << "the dashboard does not show " << wanted;
  }
}

TEST(GrafanaFiles, ProvisioningPointsAtComposeServicesAndMounts) {
  const YAML::Node datasources = YAML::LoadFile(RepoPath("deploy/grafana/provisioning/datasources/prometheus.yml"));
  const YAML::Node providers = YAML::LoadFile(RepoPath("deploy/grafana/provisioning/dashboards/veriface.yml"));
  const YAML::Node compose = YAML::LoadFile(RepoPath("deploy/compose/docker-compose.yml"));
  const nlohmann::json dashboard = Dashboard();

  // The datasource is the compose Prometheus, and the dashboard's datasource variable defaults to its uid.
  const YAML::Node ds = datasources["datasources"][0];
  EXPECT_EQ(ds["type"].as<std::string>(), "prometheus");
  EXPECT_EQ(ds["url"].as<std::string>(), "http://prometheus:9090");
  EXPECT_TRUE(compose["services"]["prometheus"]);
  std::string default_uid;
  for (const auto& v : dashboard["templating"]["list"]) {
    if (v.value("type", "") == "datasource") default_uid = v["current"].value("value", "");
  }
  EXPECT_EQ(default_uid, ds["uid"].as<std::string>());

  // The provider reads the folder compose mounts the dashboards into, and the provisioning folder is mounted.
  const std::string provider_path = providers["providers"][0]["options"]["path"].as<std::string>();
  std::map<std::string, std::string> mounts;  // container path -> host path
  for (const auto& volume : compose["services"]["grafana"]["volumes"]) {
    const std::vector<std::string> parts = absl::StrSplit(volume.as<std::string>(), ':');
    mounts[parts[1]] = parts[0];
  }
  ASSERT_TRUE(mounts.count(provider_path)) << provider_path << " is not mounted into the grafana service";
  EXPECT_TRUE(fs::exists(RepoPath("deploy/compose/" + mounts[provider_path] + "/veriface.json")));
  ASSERT_TRUE(mounts.count("/etc/grafana/provisioning"));
  EXPECT_TRUE(fs::exists(RepoPath("deploy/compose/" + mounts["/etc/grafana/provisioning"] + "/datasources")));
  const std::string home =
      compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].as<std::string>();
  EXPECT_EQ(fs::path(home).parent_path().string(), provider_path);
}

// ---- compose ------------------------------------------------------------------------------------------------

TEST(ComposeFile, ServerPortsVolumeAndMountsAgreeWithTheImage) {
  const YAML::Node compose = YAML::LoadFile(RepoPath("deploy/compose/docker-compose.yml"));
  const YAML::Node server = compose["services"]["veriface"];
  ASSERT_TRUE(server) << "no service 'veriface'";
  for (const char* service : {"prometheus", "grafana"}) EXPECT_TRUE(compose["services"][service]) << service;

  const std::string context = server["build"]["context"].as<std::string>();
  EXPECT_TRUE(
      fs::exists(RepoPath("deploy/compose/" + context + "/" + server["build"]["dockerfile"].as<std::string>())));

  // Published container ports are the configured ones.
  const YAML::Node config = ImageConfig();
  std::set<int> container_ports;
  for (const auto& p : server["ports"]) container_ports.insert(PortOf(p.as<std::string>()));
  EXPECT_EQ(container_ports, (std::set<int>{PortOf(config["server"]["listen"].as<std::string>()),
                                            PortOf(config["metrics"]["listen"].as<std::string>())}));

  // The gallery lives on a named volume at the folder of gallery.path.
  const std::string gallery_dir = fs::path(config["gallery"]["path"].as<std::string>()).parent_path().string();
  bool on_volume = false;
  for (const auto& v : server["volumes"]) {
    const std::vector<std::string> parts = absl::StrSplit(v.as<std::string>(), ':');
    if (parts.size() >= 2 && parts[1] == gallery_dir) on_volume = compose["volumes"][parts[0]].IsDefined();
  }
  EXPECT_TRUE(on_volume) << "the gallery folder " << gallery_dir << " is not on a named volume";

  // Every file or folder mounted from the repository exists, and Prometheus gets its config and rules.
  for (const char* service : {"prometheus", "grafana"}) {
    for (const auto& v : compose["services"][service]["volumes"]) {
      const std::string host = v.as<std::string>().substr(0, v.as<std::string>().find(':'));
      if (host.rfind(".", 0) == 0) {
        EXPECT_TRUE(fs::exists(RepoPath("deploy/compose/" + host))) << host;
      }
    }
  }
  bool config_mounted = false;
  for (const auto& v : compose["services"]["prometheus"]["volumes"]) {
    if (v.as<std::string>().rfind("../prometheus:/etc/prometheus", 0) == 0) config_mounted = true;
  }
  EXPECT_TRUE(config_mounted);

  // The Prometheus image is the version whose promtool checks our files here.
  const std::string image = compose["services"]["prometheus"]["image"].as<std::string>();
  const CommandResult version = RunCommand({Promtool(), "--version"});
  const std::string tag = image.substr(image.find(":v") + 2);
  EXPECT_TRUE(absl::StrContains(version.out + version.err, "version " + tag)) << image << " vs " << version.out;
}

TEST(ComposeFile, DockerComposeValidatesIt) {
  // Debian's docker-compose checks a file against the Compose schema without a Docker engine.
  const std::string compose = Which("docker-compose");
  ASSERT_FALSE(compose.empty()) << "docker-compose not found: install Debian's docker-compose package";
  const CommandResult r = RunCommand({compose, "-f", RepoPath("deploy/compose/docker-compose.yml"), "config", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // It does refuse a file that is wrong, so that the pass above means something.
  TempDir dir;
  std::ofstream(dir.File("docker-compose.yml")) << "services:\n  veriface:\n    image: veriface\n    ports: 50051\n";
  EXPECT_NE(RunCommand({compose, "-f", dir.File("docker-compose.yml"), "config", "-q"}).exit_code, 0);
}

// ---- the Dockerfile -----------------------------------------------------------------------------------------

TEST(DockerfileTest, BuildsOnDebianWithSetupAndRunsOnSlim) {
  const Dockerfile file = TheDockerfile();
  ASSERT_GE(file.stages.size(), 2u);
  const DockerStage& runtime = RuntimeStage(file);
  EXPECT_EQ(file.RootImage(runtime), "debian:12-slim");

  // The runtime tree comes from the build stage, where install-runtime.sh wrote it.
  std::string from_stage, copied;
  for (const std::string& copy : runtime.All("COPY")) {
    const std::vector<std::string> w = Words(copy);
    if (!w.empty() && w[0].rfind("--from=", 0) == 0) {
      from_stage = w[0].substr(7);
      copied = w[1];
    }
  }
  const DockerStage* build = file.Stage(from_stage);
  ASSERT_NE(build, nullptr) << "the runtime stage copies from no build stage";
  EXPECT_EQ(file.RootImage(*build), "debian:12");
  std::string runs;
  for (const std::string& r : build->All("RUN")) runs += r + "\n";
  EXPECT_TRUE(absl::StrContains(runs, "deploy/setup.sh")) << "the image is not built by the README's setup script";
  EXPECT_TRUE(absl::StrContains(runs, "deploy/docker/install-runtime.sh --dest " + copied.substr(0, copied.size() - 1)))
      << "install-runtime.sh does not write what the runtime stage copies (" << copied << ")";

  // Both variants resolve: the default CPU one and the CUDA one.
  EXPECT_EQ(file.global_args.at("VARIANT"), "cpu");
  for (const char* variant : {"build-cuda", "runtime-cuda"}) EXPECT_NE(file.Stage(variant), nullptr) << variant;
}

TEST(DockerfileTest, RunsAsANonRootUserWithTheConfiguredPortsAndGalleryVolume) {
  const Dockerfile file = TheDockerfile();
  const DockerStage& runtime = RuntimeStage(file);
  const std::string user = runtime.Last("USER");
  ASSERT_FALSE(user.empty());
  const int uid = std::stoi(user.substr(0, user.find(':')));  // numeric, so that Kubernetes can check it
  EXPECT_GT(uid, 0);

  const YAML::Node config = ImageConfig();
  std::set<int> exposed;
  for (const std::string& w : Words(runtime.Last("EXPOSE"))) exposed.insert(std::stoi(w));
  EXPECT_EQ(exposed, (std::set<int>{PortOf(config["server"]["listen"].as<std::string>()),
                                    PortOf(config["metrics"]["listen"].as<std::string>())}));
  const std::vector<std::string> volume = ExecForm(runtime.Last("VOLUME"));
  ASSERT_EQ(volume.size(), 1u);
  EXPECT_EQ(volume[0], fs::path(config["gallery"]["path"].as<std::string>()).parent_path().string());

  // The health check asks the configured gRPC port.
  const std::string healthcheck = runtime.Last("HEALTHCHECK");
  const std::vector<std::string> health = ExecForm(healthcheck.substr(healthcheck.find("CMD ") + 4));
  ASSERT_FALSE(health.empty()) << healthcheck;
  EXPECT_EQ(health[0], "veriface");
  EXPECT_EQ(health.back(), "health");
  bool port_matches = false;
  for (const std::string& a : health) {
    port_matches |= PortOf(a) == PortOf(config["server"]["listen"].as<std::string>());
  }
  EXPECT_TRUE(port_matches) << healthcheck;
}

TEST(DockerfileTest, EveryScriptItRunsIsInTheRepositoryAndExecutable) {
  const Dockerfile file = TheDockerfile();
  std::set<std::string> scripts;
  for (const DockerStage& stage : file.stages) {
    for (const std::string& run : stage.All("RUN")) {
      for (const std::string& w : Words(run)) {
        if (w.rfind("deploy/", 0) == 0 && absl::EndsWith(w, ".sh")) scripts.insert(w);
      }
    }
  }
  EXPECT_TRUE(scripts.count("deploy/setup.sh"));
  EXPECT_TRUE(scripts.count("deploy/docker/install-runtime.sh"));
  EXPECT_TRUE(scripts.count("deploy/docker/install-libtorch.sh"));
  for (const std::string& s : scripts) {
    EXPECT_EQ(::access(RepoPath(s).c_str(), X_OK), 0) << s << " is missing or not executable";
  }
  // .dockerignore must not keep them (or the sources) out of the build context.
  const std::string ignore = ReadText(RepoPath(".dockerignore"));
  for (const char* kept : {"deploy", "core", "server", "client", "proto", "CMakeLists.txt", "cmake"}) {
    EXPECT_FALSE(absl::StrContains("\n" + ignore, std::string("\n") + kept)) << kept << " is ignored";
  }
}

// ---- Kubernetes ---------------------------------------------------------------------------------------------

TEST(KubernetesManifests, HoldTheFourObjectsAndTheirReferencesResolve) {
  auto objects = KubernetesObjects();
  for (const char* kind : {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"}) {
    ASSERT_TRUE(objects.count(kind)) << kind;
  }
  const YAML::Node spec = objects["Deployment"]["spec"];
  const YAML::Node pod = spec["template"]["spec"];
  // Selectors pick the pod's labels.
  const YAML::Node labels = spec["template"]["metadata"]["labels"];
  for (const auto& kv : spec["selector"]["matchLabels"]) {
    EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(), kv.second.as<std::string>());
  }
  for (const auto& kv : objects["Service"]["spec"]["selector"]) {
    EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(), kv.second.as<std::string>());
  }
  // Volumes point at the ConfigMap and the claim by their names.
  for (const auto& volume : pod["volumes"]) {
    if (volume["configMap"]) {
      EXPECT_EQ(volume["configMap"]["name"].as<std::string>(),
                objects["ConfigMap"]["metadata"]["name"].as<std::string>());
    }
    if (volume["persistentVolumeClaim"]) {
      EXPECT_EQ(volume["persistentVolumeClaim"]["claimName"].as<std::string>(),
                objects["PersistentVolumeClaim"]["metadata"]["name"].as<std::string>());
    }
  }
  // One writer per gallery file.
  EXPECT_EQ(spec["replicas"].as<int>(), 1);
  EXPECT_EQ(spec["strategy"]["type"].as<std::string>(), "Recreate");
  EXPECT_EQ(objects["PersistentVolumeClaim"]["spec"]["accessModes"][0].as<std::string>(), "ReadWriteOnce");
}

TEST(KubernetesManifests, ProbesPortsAndServiceMatchTheConfiguration) {
  auto objects = KubernetesObjects();
  const YAML::Node pod = objects["Deployment"]["spec"]["template"]["spec"];
  const YAML::Node container = pod["containers"][0];
  const YAML::Node config = YAML::Load(objects["ConfigMap"]["data"]["veriface.yaml"].as<std::string>());
  const int grpc_port = PortOf(config["server"]["listen"].as<std::string>());
  const int metrics_port = PortOf(config["metrics"]["listen"].as<std::string>());
  EXPECT_EQ(grpc_port, PortOf(ImageConfig()["server"]["listen"].as<std::string>()));
  EXPECT_EQ(metrics_port, PortOf(ImageConfig()["metrics"]["listen"].as<std::string>()));
  EXPECT_EQ(ContainerPort(container, "grpc")["containerPort"].as<int>(), grpc_port);
  EXPECT_EQ(ContainerPort(container, "metrics")["containerPort"].as<int>(), metrics_port);

  // Kubernetes' native gRPC probes (grpc.health.v1) on the gRPC port, for all three.
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    ASSERT_TRUE(container[probe]["grpc"]) << probe << " is not a gRPC probe";
    EXPECT_EQ(container[probe]["grpc"]["port"].as<int>(), grpc_port) << probe;
  }
  // The service the readiness probe names is the one the server reports (runtime_image_test asks it for real).
  EXPECT_EQ(container["readinessProbe"]["grpc"]["service"].as<std::string>(), "veriface.v1.Veriface");

  // The Service forwards to the named container ports.
  std::set<std::string> target_ports;
  for (const auto& p : objects["Service"]["spec"]["ports"]) {
    target_ports.insert(p["targetPort"].as<std::string>());
    EXPECT_TRUE(ContainerPort(container, p["targetPort"].as<std::string>()).IsDefined()) << p["targetPort"];
  }
  EXPECT_EQ(target_ports, (std::set<std::string>{"grpc", "metrics"}));

  // Prometheus's pod annotations name the metrics port.
  const YAML::Node annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"];
  EXPECT_EQ(annotations["prometheus.io/port"].as<std::string>(), std::to_string(metrics_port));

  // The server's drain fits in the pod's grace period.
  EXPECT_GT(pod["terminationGracePeriodSeconds"].as<double>(), config["server"]["shutdown_grace_seconds"].as<double>());
}

TEST(KubernetesManifests, RunAsTheImagesNonRootUserWithLimitsAndTheGalleryOnTheClaim) {
  auto objects = KubernetesObjects();
  const YAML::Node pod = objects["Deployment"]["spec"]["template"]["spec"];
  const YAML::Node container = pod["containers"][0];
  const std::string user = RuntimeStage(TheDockerfile()).Last("USER");
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  EXPECT_EQ(pod["securityContext"]["runAsUser"].as<int>(), std::stoi(user.substr(0, user.find(':'))));
  EXPECT_FALSE(container["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  EXPECT_TRUE(container["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  EXPECT_EQ(container["securityContext"]["capabilities"]["drop"][0].as<std::string>(), "ALL");

  // Requests and limits for CPU and memory, requests within limits; LibTorch threads follow the CPU limit.
  const YAML::Node resources = container["resources"];
  const double cpu_request = Cpu(resources["requests"]["cpu"].as<std::string>());
  const double cpu_limit = Cpu(resources["limits"]["cpu"].as<std::string>());
  EXPECT_LE(cpu_request, cpu_limit);
  EXPECT_LE(Bytes(resources["requests"]["memory"].as<std::string>()),
            Bytes(resources["limits"]["memory"].as<std::string>()));
  const YAML::Node config = YAML::Load(objects["ConfigMap"]["data"]["veriface.yaml"].as<std::string>());
  EXPECT_EQ(config["inference"]["torch_threads"].as<double>(), cpu_limit);

  // The configuration file the server is told to read is the ConfigMap's key where it is mounted; the gallery
  // is on the claim; the rest of the ConfigMap agrees with the image's own configuration.
  std::map<std::string, std::string> mount_of;  // volume name -> mount path
  for (const auto& m : container["volumeMounts"])
    mount_of[m["name"].as<std::string>()] = m["mountPath"].as<std::string>();
  std::string config_volume, gallery_volume;
  for (const auto& v : pod["volumes"]) {
    if (v["configMap"]) config_volume = v["name"].as<std::string>();
    if (v["persistentVolumeClaim"]) gallery_volume = v["name"].as<std::string>();
  }
  const std::vector<std::string> args = container["args"].as<std::vector<std::string>>();
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[0], "--config");
  EXPECT_EQ(args[1], mount_of[config_volume] + "/veriface.yaml");
  const std::string gallery_path = config["gallery"]["path"].as<std::string>();
  EXPECT_EQ(fs::path(gallery_path).parent_path().string(), mount_of[gallery_volume]);
  const YAML::Node image = ImageConfig();
  EXPECT_EQ(gallery_path, image["gallery"]["path"].as<std::string>());
  EXPECT_EQ(config["model"]["dir"].as<std::string>(), image["model"]["dir"].as<std::string>());
  EXPECT_EQ(config["model"]["device"].as<std::string>(), "auto");
  EXPECT_EQ(image["model"]["device"].as<std::string>(), "auto");
}

// ---- the server accepts them ----------------------------------------------------------------------------------

TEST(DeployedConfigurations, TheServerAcceptsTheImageAndClusterConfigurations) {
  TempDir dir;
  const std::string cluster = dir.File("cluster.yaml");
  {
    std::ofstream out(cluster);
    out << KubernetesObjects()["ConfigMap"]["data"]["veriface.yaml"].as<std::string>();
  }
  for (const std::string& path : {RepoPath("deploy/docker/veriface.yaml"), cluster}) {
    const CommandResult r = RunCommand({ServerBinary(), "--config", path, "--print-config"});
    ASSERT_EQ(r.exit_code, 0) << path << ": " << r.out << r.err;
    const YAML::Node effective = YAML::Load(r.out);
    const YAML::Node written = YAML::LoadFile(path);
    EXPECT_EQ(effective["server"]["listen"].as<std::string>(), written["server"]["listen"].as<std::string>());
    EXPECT_EQ(effective["gallery"]["path"].as<std::string>(), written["gallery"]["path"].as<std::string>());
    EXPECT_EQ(effective["model"]["device"].as<std::string>(), "auto");
  }
  // And it refuses a broken one, so that acceptance above means something.
  {
    std::ofstream out(dir.File("broken.yaml"));
    out << "server:\n  listne: \"0.0.0.0:50051\"\n";
  }
  EXPECT_NE(RunCommand({ServerBinary(), "--config", dir.File("broken.yaml"), "--print-config"}).exit_code, 0);
}

// ---- install-libtorch.sh ------------------------------------------------------------------------------------

TEST(InstallLibtorch, UnpacksAnArchiveWithTheRightChecksumAndRefusesOneWithout) {
  TempDir dir;
  // A stand-in archive with LibTorch's layout, served from a file:// URL.
  fs::create_directories(dir.File("src/libtorch/share/cmake/Torch"));
  std::ofstream(dir.File("src/libtorch/share/cmake/Torch/TorchConfig.cmake")) << "# stand-in\n";
  const Outcome zip = RunWithEnv({"/usr/bin/python3", "-m", "zipfile", "-c", dir.File("libtorch.zip"), "libtorch"}, {},
                                 std::chrono::seconds(60), dir.File("src"));
  ASSERT_EQ(zip.exit_code, 0) << zip.output;
  const CommandResult sum = RunCommand({"/usr/bin/sha256sum", dir.File("libtorch.zip")});
  const std::string sha256 = sum.out.substr(0, 64);
  const std::string script = RepoPath("deploy/docker/install-libtorch.sh");
  const std::string url = "file://" + dir.File("libtorch.zip");

  const std::string wrong = std::string(63, '0') + "1";
  const CommandResult refused = RunCommand({script, "--url", url, "--sha256", wrong, "--dest", dir.File("refused")});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(refused.err, "refusing")) << refused.err;
  EXPECT_FALSE(fs::exists(dir.File("refused")));

  const CommandResult unpinned = RunCommand({script, "--url", url, "--sha256", "", "--dest", dir.File("unpinned")});
  EXPECT_NE(unpinned.exit_code, 0);
  EXPECT_FALSE(fs::exists(dir.File("unpinned")));

  const CommandResult ok = RunCommand({script, "--url", url, "--sha256", sha256, "--dest", dir.File("opt/libtorch")});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(fs::exists(dir.File("opt/libtorch/share/cmake/Torch/TorchConfig.cmake")));
}

}  // namespace
}  // namespace veriface::testing
