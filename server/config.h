#pragma once
// The server's configuration: config/veriface.yaml documents every key and its default. A file need only
// name what it changes; unknown keys and out-of-range values are refused with the key's full name.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gallery/gallery_limits.h"
#include "core/gallery/index_options.h"
#include "core/serving/service_options.h"
#include "server/rate_limiter.h"

namespace veriface::server {

// One model stage's dynamic batcher (detection on decoded images, embedding on aligned chips).
struct BatchingConfig {
  int max_batch = 1;
  int64_t max_queue_delay_us = 2000;
  int max_queue_size = 64;
  int workers = 1;
};

struct ServerConfig {
  // server
  std::string listen = "0.0.0.0:50051";
  int64_t max_receive_message_bytes = 64LL << 20;
  int64_t max_send_message_bytes = 16LL << 20;
  double shutdown_grace_seconds = 10;
  int stream_window = 16;  // EnrollStream items in flight per stream
  std::string ready_file;  // written once serving: {"grpc_port":..,"metrics_port":..,"pid":..}
  // A second, always plaintext listener that serves only grpc.health.v1 (for probes that cannot speak
  // TLS or hold a client certificate); empty: none.
  std::string health_listen;

  // tls: "plaintext", "tls" (server certificate) or "mtls" (and clients must present a certificate
  // signed by client_ca_file). Plaintext is the built-in default and must be chosen, never a fallback:
  // certificate files with mode plaintext are refused.
  std::string tls_mode = "plaintext";
  std::string tls_cert_file;       // PEM certificate chain, the server's first
  std::string tls_key_file;        // PEM private key of that certificate (unencrypted)
  std::string tls_client_ca_file;  // PEM CA certificates that sign client certificates (mtls)

  // auth: "none" (every caller may do everything) or "api_keys". The configuration names where the
  // hashed keys are, never a key.
  std::string auth_mode = "none";
  std::string api_keys_file;                       // lines "NAME ROLE sha256:HEX"
  std::string api_keys_env = "VERIFACE_API_KEYS";  // an environment variable holding more such lines

  // rate_limits: a token bucket per API key name (all callers share one without keys); per_second 0 is
  // unlimited. rate_limit_keys ("NAME=PER_SECOND[:BURST],...") overrides it for the keys it names.
  RateLimit rate_limit;
  std::string rate_limit_keys;

  // audit: where the line for every write goes: "log", "file" (audit_file) or "none".
  std::string audit_sink = "log";
  std::string audit_file;

  // metrics
  bool metrics_enabled = true;
  std::string metrics_listen = "0.0.0.0:9464";

  // model
  std::string model_dir = "models/default";
  std::string device = "cpu";

  // inference
  int torch_threads = 0;  // 0: one per hardware core
  BatchingConfig detect{4, 2000, 64, 1};
  BatchingConfig embed{32, 2000, 256, 1};

  // limits.*, model.fallback_threshold and gallery.postgres.*_ms: the serving core's own options
  FaceServiceOptions service;

  // gallery: "sqlite" keeps it in one file that one replica owns; "postgres" in a database that several
  // replicas share, each holding the whole gallery in memory and following the others' writes
  // (service.follow holds how).
  std::string gallery_store = "sqlite";
  std::string gallery_path = "gallery.db";  // sqlite
  // gallery.max_templates, max_templates_per_identity and max_galleries: the gallery's own limits.
  GalleryLimits gallery_limits;
  // gallery.index.*: how Identify searches each gallery.
  IndexOptions gallery_index;
  // postgres: a libpq connection string without the password (one in it is refused, as the configuration
  // is logged). The environment's VERIFACE_POSTGRES_DSN, when set, replaces it.
  std::string postgres_dsn;
  // A file holding the password; when empty, the environment's VERIFACE_POSTGRES_PASSWORD (or none).
  std::string postgres_password_file;

  // logging
  std::string log_level = "info";
};

// Reads `path` (empty: built-in defaults only), then applies `overrides` of the form ("model.device",
// "cuda:0") in order, then validates. Errors are INVALID_ARGUMENT naming the file, key and value.
absl::StatusOr<ServerConfig> LoadConfig(const std::string& path,
                                        const std::vector<std::pair<std::string, std::string>>& overrides);
// The same from a file's text; `where` names it in messages (empty: no file, defaults only).
absl::StatusOr<ServerConfig> ParseConfig(std::string_view yaml, const std::string& where,
                                         const std::vector<std::pair<std::string, std::string>>& overrides);

// The effective configuration as YAML (for --print-config and the start-up log).
std::string ConfigToYaml(const ServerConfig& config);

}  // namespace veriface::server
