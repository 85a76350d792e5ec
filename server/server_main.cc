// veriface-server: loads the configuration, listens, loads the model and the gallery (health says
// NOT_SERVING until then), serves until SIGTERM or SIGINT, then drains and exits 0.

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <malloc.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <future>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/openmp_env.h"
#include "core/serving/batched_engine.h"
#include "server/api_keys.h"
#include "server/audit_log.h"
#include "server/call_guard.h"
#include "server/config.h"
#include "server/config_flags.h"
#include "server/credentials.h"
#include "server/health_service.h"
#include "server/metrics.h"
#include "server/rate_limiter.h"
#include "server/veriface_service.h"
#include "server/version.h"

namespace veriface::server {
namespace {

bool IsLoopback(const std::string& listen) {
  return listen.rfind("127.", 0) == 0 || listen.rfind("localhost:", 0) == 0 || listen.rfind("[::1]:", 0) == 0;
}

// Plaintext and open access are allowed, but said out loud when the port is reachable from elsewhere.
void WarnAboutExposure(const ServerConfig& config) {
  if (IsLoopback(config.listen)) return;
  if (config.tls_mode == "plaintext") {
    spdlog::warn(
        "server.listen '{}' is reachable from other hosts and tls.mode is plaintext: calls{} travel "
        "unencrypted",
        config.listen, config.auth_mode == "none" ? "" : " and their API keys");
  }
  if (config.auth_mode == "none") {
    spdlog::warn(
        "server.listen '{}' is reachable from other hosts and auth.mode is none: any caller may enrol "
        "and delete identities",
        config.listen);
  }
}

// The signals the server takes with sigwait: SIGTERM and SIGINT stop it, SIGHUP reloads.
sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// SIGHUP: the API keys and the TLS certificates are read again (a bad file keeps what is in force, and
// says why) and the audit file is reopened after a rotation. Connections and calls in progress are
// untouched. `certificates` is null in plaintext.
void Reload(const ServerConfig& config, SwappableGuard& guard, AuditLog& audit, TlsCertificates* certificates) {
  spdlog::info("SIGHUP: reloading API keys{} and reopening the audit log", certificates ? ", TLS certificates" : "");
  if (certificates != nullptr) {
    if (const absl::Status s = certificates->Reload(); !s.ok()) {
      spdlog::error("SIGHUP: the TLS certificates were not reloaded, the previous ones stay in use: {}",
                    std::string(s.message()));
    }
  }
  if (auto next = MakeCallGuard(config); next.ok()) {
    guard.Replace(*std::move(next));
  } else {
    spdlog::error("SIGHUP: the API keys were not reloaded, the previous ones stay in force: {}",
                  std::string(next.status().message()));
  }
  if (const absl::Status s = audit.Reopen(); !s.ok()) {
    spdlog::error("SIGHUP: the audit log was not reopened: {}", std::string(s.message()));
  }
  spdlog::info("SIGHUP: reload finished");
}

// Runs the server; returns the process exit code.
int Run(const ServerConfig& config) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("veriface-server"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  // Metrics first: a port clash is found before the model is loaded.
  const auto metrics = std::make_shared<Metrics>(TorchVersion());
  metrics->AddStage(kDetectStage, config.detect.max_queue_size);
  metrics->AddStage(kEmbedStage, config.embed.max_queue_size);
  if (config.metrics_enabled) {
    if (const absl::Status s = metrics->Serve(config.metrics_listen); !s.ok()) {
      spdlog::critical("{}", std::string(s.message()));
      return 1;
    }
  }

  const auto security = MakeServerCredentials(config);
  if (!security.ok()) {
    spdlog::critical("{}", std::string(security.status().message()));
    return 1;
  }
  const std::shared_ptr<TlsCertificates> certificates = security->certificates;
  const auto first_guard = MakeCallGuard(config);
  if (!first_guard.ok()) {
    spdlog::critical("{}", std::string(first_guard.status().message()));
    return 1;
  }
  const auto guard = std::make_shared<SwappableGuard>(*first_guard);
  auto audit = AuditLog::Open(*ParseAuditSink(config.audit_sink), config.audit_file);  // checked with the config
  if (!audit.ok()) {
    spdlog::critical("{}", std::string(audit.status().message()));
    return 1;
  }
  const std::shared_ptr<AuditLog> audit_log = *std::move(audit);
  RateLimits limits;
  limits.all = config.rate_limit;
  limits.keys = *ParseKeyRateLimits(config.rate_limit_keys);  // checked with the configuration
  WarnAboutExposure(config);
  VerifaceService service(config, metrics, guard, std::make_shared<RateLimiter>(std::move(limits)), audit_log);
  HealthService health(veriface::v1::Veriface::service_full_name());
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int port = 0;
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind the same port and the kernel split
  // the traffic between two servers with two different galleries. A port in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(config.listen, security->credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_receive_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_send_message_bytes));
  // No thread quota (ResourceQuota::SetMaxThreads): gRPC's synchronous server aborted on an internal
  // assertion once it was exhausted. Work is bounded instead by limits.max_concurrent_calls, whose
  // refusals take microseconds, so that the threads beyond it come and go quickly.
  builder.RegisterService(&service);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::critical("cannot listen on '{}' (server.listen): the address is malformed or in use", config.listen);
    return 1;
  }
  // The probe-only listener: a server of its own, since a gRPC server's services answer on all its ports.
  HealthService probe_health(veriface::v1::Veriface::service_full_name());
  std::unique_ptr<grpc::Server> probe_server;
  int health_port = 0;
  if (!config.health_listen.empty()) {
    grpc::ServerBuilder probe_builder;
    probe_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    probe_builder.AddListeningPort(config.health_listen, grpc::InsecureServerCredentials(), &health_port);
    probe_builder.SetMaxReceiveMessageSize(4096);
    probe_builder.RegisterService(&probe_health);
    probe_server = probe_builder.BuildAndStart();
    if (probe_server == nullptr || health_port == 0) {
      spdlog::critical("cannot listen on '{}' (server.health_listen): the address is malformed or in use",
                       config.health_listen);
      server->Shutdown(std::chrono::system_clock::now());
      return 1;
    }
  }
  const auto set_serving = [&](bool serving) {
    health.SetServing(serving);
    probe_health.SetServing(serving);
  };
  spdlog::info("veriface-server {} listening on port {} (gRPC, {}), metrics on port {}{}", kVersion, port,
               config.tls_mode, metrics->port(),
               health_port > 0 ? absl::StrCat(", plaintext health on port ", health_port) : std::string());
  if (!config.ready_file.empty()) {
    const std::string ready = absl::StrCat("{\"grpc_port\": ", port, ", \"metrics_port\": ", metrics->port(),
                                           ", \"health_port\": ", health_port, ", \"pid\": ", ::getpid(), "}\n");
    if (const absl::Status s = WriteFileAtomically(config.ready_file, ready); !s.ok()) {
      spdlog::critical("server.ready_file: {}", std::string(s.message()));
      return 1;
    }
  }

  // SIGTERM, SIGINT and SIGHUP are blocked in every thread (see main); this one takes them synchronously.
  // Shared with the detached thread, which may outlive this function when start-up fails.
  const auto stop = std::make_shared<std::promise<int>>();
  std::thread([stop, config, guard, audit_log, certificates] {
    const sigset_t set = HandledSignals();
    while (true) {
      int signal = 0;
      sigwait(&set, &signal);
      if (signal == SIGHUP) {
        Reload(config, *guard, *audit_log, certificates.get());
        continue;
      }
      stop->set_value(signal);
      return;
    }
  }).detach();

  if (const absl::Status s = service.Load(); !s.ok()) {
    spdlog::critical("{}", std::string(s.message()));
    server->Shutdown(std::chrono::system_clock::now());
    if (probe_server != nullptr) probe_server->Shutdown(std::chrono::system_clock::now());
    return 1;
  }
  set_serving(true);
  spdlog::info("serving");

  const int signal = stop->get_future().get();
  spdlog::info("{}: draining (up to {} s), then stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT",
               config.shutdown_grace_seconds);
  health.Shutdown();
  probe_health.Shutdown();
  // Stops accepting at once; calls in progress get the grace period, then are cancelled.
  const auto grace = std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::duration<double>(config.shutdown_grace_seconds));
  server->Shutdown(std::chrono::system_clock::now() + grace);
  server->Wait();
  // The probe port goes last, so that probes see NOT_SERVING (not a refused connection) while draining.
  if (probe_server != nullptr) {
    probe_server->Shutdown(std::chrono::system_clock::now());
    probe_server->Wait();
  }
  service.Shutdown();
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace veriface::server

int main(int argc, char** argv) {
  using namespace veriface::server;
  // First of all: this may restart the program (same pid) so that libgomp starts with short spins.
  veriface::UseShortOpenMpSpins(argv);
  // Before any thread starts, so that every thread inherits the mask and only sigwait sees the signals.
  const sigset_t set = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // glibc gives each of gRPC's many request threads its own malloc arena, and each arena keeps the
  // decoded images it once held: under bursts of large photos that is hundreds of MB of idle memory.
  // A few shared arenas cost little contention here (the model stages dominate). MALLOC_ARENA_MAX wins.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 4);

  CLI::App app{"veriface-server: face verification over gRPC"};
  ConfigFlags config_flags;
  bool print_config = false;
  app.set_version_flag("--version", std::string(kVersion));
  config_flags.AddTo(app);
  app.add_flag("--print-config", print_config, "Print the effective configuration as YAML and exit");
  CLI11_PARSE(app, argc, argv);
  const auto config = config_flags.Load(app);
  if (!config.ok()) {
    std::cerr << "veriface-server: " << config.status().message() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << ConfigToYaml(*config) << "\n";
    return 0;
  }
  return Run(*config);
}
