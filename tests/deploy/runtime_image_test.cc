// The runtime image without Docker: deploy/docker/install-runtime.sh lays out the tree the Dockerfile copies
// onto debian:12-slim, invoked with the Dockerfile's own arguments; then the server is started from that tree
// with the Dockerfile's WORKDIR, ENTRYPOINT, CMD and USER, and the HEALTHCHECK command is run against it.
// What would differ in the image is only glibc (the base image's, which these tests allow from the system).

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/deploy/deploy_util.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;

class RuntimeImageTest : public ::testing::Test {
 protected:
  // One tree for the whole suite: collecting the libraries copies a few hundred megabytes.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    root_ = dir_->File("rootfs");
    dockerfile_ = new Dockerfile(ParseDockerfile(ReadText(RepoPath("Dockerfile"))));
    // The Dockerfile's call, with the paths of this machine's build in place of the image's.
    std::vector<std::string> argv;
    for (const DockerStage& stage : dockerfile_->stages) {
      for (const std::string& run : stage.All("RUN")) {
        if (absl::StrContains(run, "deploy/docker/install-runtime.sh")) argv = Words(run);
      }
    }
    ASSERT_FALSE(argv.empty()) << "the Dockerfile does not run deploy/docker/install-runtime.sh";
    const std::string build_dir = fs::path(ServerBinary()).parent_path().parent_path().string();
    for (size_t i = 0; i < argv.size(); ++i) {
      if (i == 0) argv[i] = RepoPath(argv[i]);
      if (i + 1 >= argv.size()) continue;
      if (argv[i] == "--dest") argv[i + 1] = root_;
      if (argv[i] == "--build") argv[i + 1] = build_dir;
      if (argv[i] == "--model") argv[i + 1] = DefaultModelDir();
    }
    const Outcome installed = RunWithEnv(argv, {}, std::chrono::seconds(300));
    install_output_ = new std::string(installed.output);
    ASSERT_EQ(installed.exit_code, 0) << installed.output;
    // The image's user must be able to reach the tree, as it can in the image.
    fs::permissions(dir_->path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                      fs::perms::others_read | fs::perms::others_exec);
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete dockerfile_;
    delete install_output_;
  }

  // An absolute path of the image, as it lies in the tree.
  static std::string InTree(const std::string& image_path) { return root_ + image_path; }
  static const DockerStage& Runtime() { return dockerfile_->stages.back(); }

  // The image's PATH, the first folder of it that holds `program` in the tree.
  static std::string Resolve(const std::string& program) {
    if (program[0] == '/') return InTree(program);
    for (const std::string& env : Runtime().All("ENV")) {
      if (env.rfind("PATH=", 0) != 0) continue;
      for (const auto dir : absl::StrSplit(env.substr(5), ':')) {
        const std::string candidate = InTree(std::string(dir) + "/" + program);
        if (fs::exists(candidate)) return candidate;
      }
    }
    return "";
  }

  // Every ELF file of the tree: the programs and the libraries.
  static std::vector<std::string> ElfFiles() {
    std::vector<std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(root_)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      char magic[4] = {};
      in.read(magic, 4);
      if (in.gcount() == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F') {
        files.push_back(entry.path().string());
      }
    }
    return files;
  }

  static TempDir* dir_;
  static std::string root_;
  static Dockerfile* dockerfile_;
  static std::string* install_output_;
};

TempDir* RuntimeImageTest::dir_ = nullptr;
std::string RuntimeImageTest::root_;
Dockerfile* RuntimeImageTest::dockerfile_ = nullptr;
std::string* RuntimeImageTest::install_output_ = nullptr;

TEST_F(RuntimeImageTest, EveryLibraryResolvesInsideTheTreeOrToGlibc) {
  const std::set<std::string> glibc = GlibcFiles();
  ASSERT_FALSE(glibc.empty());
  const std::string lib_dir = InTree("/opt/veriface/lib");
  const std::vector<std::string> elves = ElfFiles();
  ASSERT_GT(elves.size(), 2u);
  int resolved = 0;
  for (const std::string& elf : elves) {
    // Only the tree's libraries may be found: no system folder besides glibc's is searched first by accident.
    const Outcome ldd = RunWithEnv({"/usr/bin/ldd", elf}, {{"LD_LIBRARY_PATH", lib_dir}});
    ASSERT_EQ(ldd.exit_code, 0) << elf << ": " << ldd.output;
    std::istringstream lines(ldd.output);
    std::string line;
    while (std::getline(lines, line)) {
      const std::vector<std::string> w = Words(line);
      if (w.size() < 3 || w[1] != "=>") continue;
      EXPECT_NE(w[2], "not") << elf << " needs " << w[0] << ", which is missing from the tree";
      if (w[2] == "not") continue;
      ++resolved;
      const bool in_tree = w[2].rfind(lib_dir + "/", 0) == 0;
      EXPECT_TRUE(in_tree || glibc.count(fs::path(w[2]).filename().string()))
          << elf << " loads " << w[2] << " from outside the tree, and it is not part of glibc";
    }
  }
  EXPECT_GT(resolved, 0);
}

TEST_F(RuntimeImageTest, ListsEachLibrarysOriginAndShipsThePackagesLicences) {
  const std::string manifest = ReadText(InTree("/opt/veriface/share/runtime-libraries.txt"));
  std::set<std::string> listed, packages;
  std::istringstream lines(manifest);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> w = Words(line);
    ASSERT_EQ(w.size(), 3u) << line;
    listed.insert(w[0]);
    if (w[2] != "-") packages.insert(w[2]);
  }
  std::set<std::string> present;
  for (const auto& entry : fs::directory_iterator(InTree("/opt/veriface/lib"))) {
    present.insert(entry.path().filename().string());
  }
  EXPECT_EQ(listed, present);
  EXPECT_FALSE(packages.empty());
  for (const std::string& p : packages) {
    EXPECT_TRUE(fs::exists(InTree("/opt/veriface/share/doc/" + p + "/copyright"))) << p;
  }
  // The model and the configuration are baked in.
  EXPECT_TRUE(fs::exists(InTree("/opt/veriface/models/default/model.json")));
  EXPECT_TRUE(fs::exists(InTree("/opt/veriface/etc/veriface.yaml")));
}

TEST_F(RuntimeImageTest, ServesWithTheDockerfilesCommandsAsItsUserAndPassesItsHealthCheck) {
  const DockerStage& runtime = Runtime();
  // ENTRYPOINT + CMD with the image's paths moved into the tree; the test adds only free loopback ports, a
  // ready file and a gallery of its own (the image's is a volume).
  std::vector<std::string> argv = ExecForm(runtime.Last("ENTRYPOINT"));
  const std::vector<std::string> cmd = ExecForm(runtime.Last("CMD"));
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  ASSERT_FALSE(argv.empty());
  argv[0] = Resolve(argv[0]);
  ASSERT_FALSE(argv[0].empty()) << "the ENTRYPOINT's program is not in the tree on the image's PATH";
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i].rfind("/opt/veriface/", 0) == 0) argv[i] = InTree(argv[i]);
  }
  const std::string gallery_dir = dir_->File("gallery");
  fs::create_directories(gallery_dir);
  const std::string user = runtime.Last("USER");
  const int uid = std::stoi(user.substr(0, user.find(':')));
  const int gid = std::stoi(user.substr(user.find(':') + 1));
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(gallery_dir.c_str(), uid, gid), 0);
  }
  const std::string ready = gallery_dir + "/ready.json";
  // gRPC on a port the kernel picks; the metrics on one that was free a moment ago (the server refuses two
  // ":0" addresses as the same one).
  argv.insert(argv.end(), {"--gallery", gallery_dir + "/gallery.db", "--listen", "127.0.0.1:0", "--metrics-listen",
                           absl::StrCat("127.0.0.1:", FreeLoopbackPort()), "--ready-file", ready});
  ChildOptions options;
  options.argv = argv;
  options.cwd = InTree(runtime.Last("WORKDIR"));
  options.env = {{"LD_LIBRARY_PATH", ""}, {"PATH", "/usr/bin:/bin"}};
  options.log_path = dir_->File("server.log");
  options.uid = uid;
  options.gid = gid;
  auto server = ChildProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ChildProcess& process = **server;

  ASSERT_TRUE(PollUntil([&] { return fs::exists(ready) || process.Exited().has_value(); }, std::chrono::seconds(180)))
      << process.Log();
  ASSERT_FALSE(process.Exited().has_value()) << "the server exited: " << process.Log();
  std::smatch m;
  const std::string ready_text = ReadText(ready);
  ASSERT_TRUE(std::regex_search(ready_text, m, std::regex(R"("grpc_port": (\d+), "metrics_port": (\d+))")))
      << ready_text;
  const std::string grpc_port = m[1];
  const int metrics_port = std::stoi(m[2]);

  // The HEALTHCHECK command, aimed at this server's port: it must turn healthy once the model is loaded.
  const std::string healthcheck = runtime.Last("HEALTHCHECK");
  std::vector<std::string> health = ExecForm(healthcheck.substr(healthcheck.find("CMD ") + 4));
  ASSERT_FALSE(health.empty());
  health[0] = Resolve(health[0]);
  for (std::string& a : health) {
    if (absl::StartsWith(a, "127.0.0.1:")) a = "127.0.0.1:" + grpc_port;
  }
  const std::map<std::string, std::string> clean_env = {{"LD_LIBRARY_PATH", ""}};
  Outcome last;
  EXPECT_TRUE(PollUntil(
      [&] {
        last = RunWithEnv(health, clean_env, std::chrono::seconds(30));
        return last.exit_code == 0 || process.Exited().has_value();
      },
      std::chrono::seconds(300), std::chrono::seconds(1)))
      << last.output;
  ASSERT_EQ(last.exit_code, 0) << last.output << "\nserver log:\n" << process.Log();

  // Kubernetes' readiness probe names the Veriface service: the server must know it.
  std::vector<std::string> readiness = health;
  readiness.insert(readiness.end(), {"--service", "veriface.v1.Veriface"});
  const Outcome ready_probe = RunWithEnv(readiness, clean_env);
  EXPECT_EQ(ready_probe.exit_code, 0) << ready_probe.output;

  // Real work through the tree's client: a Verify of two LFW photos of one person.
  const std::string client = Resolve("veriface");
  const Outcome verify = RunWithEnv({client, "--server", "127.0.0.1:" + grpc_port, "--json", "verify",
                                     LfwImagePath("George_W_Bush", 1), LfwImagePath("George_W_Bush", 2)},
                                    clean_env, std::chrono::seconds(120));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_TRUE(std::regex_search(verify.output, std::regex(R"("match":\s*true)"))) << verify.output;

  // The metrics port answers, and the model the image baked in is the one loaded.
  const absl::StatusOr<std::string> metrics = HttpGet(metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(*metrics, "veriface_model_info{")) << *metrics;

  // Every shared object the running server has mapped, including any it opened itself, is the tree's or glibc's,
  // or a name-service module that this machine's /etc/nsswitch.conf chose (with what it needs): in the image
  // those come from the base image's own configuration (debian:12-slim: glibc's files and dns).
  std::set<std::string> glibc = GlibcFiles();
  std::istringstream maps(ReadText(absl::StrCat("/proc/", process.pid(), "/maps")));
  std::string line;
  std::set<std::string> mapped;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find(".so") == std::string::npos) continue;
    mapped.insert(path);
  }
  ASSERT_FALSE(mapped.empty());
  for (const std::string& path : mapped) {
    if (!absl::StartsWith(fs::path(path).filename().string(), "libnss_") || absl::StartsWith(path, root_)) continue;
    glibc.insert(fs::path(path).filename().string());
    const Outcome needs = RunWithEnv({"/usr/bin/ldd", path}, {});
    for (const std::string& word : Words(needs.output)) {
      std::error_code ec;
      if (word[0] == '/') glibc.insert(fs::canonical(word, ec).filename().string());
    }
  }
  for (const std::string& path : mapped) {
    EXPECT_TRUE(absl::StartsWith(path, root_ + "/") || glibc.count(fs::path(path).filename().string()))
        << "the server mapped " << path;
  }
  // It runs as the image's user.
  struct stat info {};
  ASSERT_EQ(::stat(absl::StrCat("/proc/", process.pid()).c_str(), &info), 0);
  if (::geteuid() == 0) {
    EXPECT_EQ(static_cast<int>(info.st_uid), uid);
  }

  // STOPSIGNAL: a clean exit, after which the health check fails, as Docker would see it.
  const std::optional<int> code = process.Terminate(std::chrono::seconds(60));
  EXPECT_EQ(code, std::optional<int>(0)) << process.Log();
  EXPECT_NE(RunWithEnv(health, clean_env).exit_code, 0);
}

}  // namespace
}  // namespace veriface::testing

namespace veriface::testing {
namespace {

// Builds `program` (C source) into BUILD/server/veriface-server, BUILD/server/veriface-migrate and
// BUILD/client/veriface, linked against stub libraries named `needs`, which are then deleted, so that ldd reports them
// "not found".
void BuildProgramsNeeding(const TempDir& dir, const std::string& build, const std::vector<std::string>& needs) {
  const std::string cc = Which("cc");
  ASSERT_FALSE(cc.empty()) << "no C compiler (build-essential)";
  std::ofstream(dir.File("stub.c")) << "int veriface_stub(void) { return 0; }\n";
  std::ofstream(dir.File("main.c")) << "int main(void) { return 0; }\n";
  fs::create_directories(dir.File("stubs"));
  std::vector<std::string> link = {cc, dir.File("main.c"), "-o", build + "/server/veriface-server",
                                   "-Wl,--no-as-needed"};
  for (const std::string& soname : needs) {
    const CommandResult stub = RunCommand(
        {cc, "-shared", "-fPIC", "-Wl,-soname," + soname, dir.File("stub.c"), "-o", dir.File("stubs/" + soname)});
    ASSERT_EQ(stub.exit_code, 0) << stub.err;
    link.push_back(dir.File("stubs/" + soname));
  }
  fs::create_directories(build + "/server");
  fs::create_directories(build + "/client");
  const CommandResult linked = RunCommand(link);
  ASSERT_EQ(linked.exit_code, 0) << linked.err;
  fs::copy_file(build + "/server/veriface-server", build + "/client/veriface", fs::copy_options::overwrite_existing);
  fs::copy_file(build + "/server/veriface-server", build + "/server/veriface-migrate",
                fs::copy_options::overwrite_existing);
  fs::remove_all(dir.File("stubs"));
}

TEST(InstallRuntime, LetsOnlyTheGpuDriverBeMissing) {
  TempDir dir;
  fs::create_directories(dir.File("model"));
  std::ofstream(dir.File("model/model.json")) << "{}\n";
  const std::string script = RepoPath("deploy/docker/install-runtime.sh");

  // The CUDA image: the driver's libcuda.so.1 is mounted by the container runtime on a GPU host, so its
  // absence at build time is fine.
  BuildProgramsNeeding(dir, dir.File("driver-only"), {"libcuda.so.1"});
  const CommandResult driver =
      RunCommand({script, "--dest", dir.File("a"), "--build", dir.File("driver-only"), "--model", dir.File("model")});
  EXPECT_EQ(driver.exit_code, 0) << driver.err;
  EXPECT_TRUE(fs::exists(dir.File("a/opt/veriface/libexec/veriface-server")));
  EXPECT_TRUE(fs::exists(dir.File("a/opt/veriface/libexec/veriface-migrate")));

  // Anything else missing stops the build, naming it.
  BuildProgramsNeeding(dir, dir.File("other"), {"libcuda.so.1", "libveriface_absent.so.1"});
  const CommandResult other =
      RunCommand({script, "--dest", dir.File("b"), "--build", dir.File("other"), "--model", dir.File("model")});
  EXPECT_NE(other.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(other.err, "libveriface_absent.so.1")) << other.err;
  EXPECT_FALSE(absl::StrContains(other.err, "libcuda")) << other.err;

  // And without a model bundle there is nothing to bake in.
  const CommandResult no_model =
      RunCommand({script, "--dest", dir.File("c"), "--build", dir.File("driver-only"), "--model", dir.File("nowhere")});
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(no_model.err, "model")) << no_model.err;
}

}  // namespace
}  // namespace veriface::testing
