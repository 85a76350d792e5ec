#include "server/config.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/gallery/ivf_int8_index.h"
#include "core/quality/face_quality.h"
#include "core/serving/operating_point.h"
#include "server/audit_log.h"

namespace veriface::server {
namespace {

// One configuration key: how to read it from a YAML scalar and how to show its value as YAML.
struct Key {
  std::function<absl::Status(const YAML::Node&)> read;
  std::function<std::string()> show;
};

// A YAML double-quoted scalar that reads back as exactly `s`. Control characters are escaped: a raw line
// break inside double quotes would read back folded into a space (found by config_fuzzer).
std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      out += absl::StrFormat("\\x%02x", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string ShowNumber(double v) {
  std::ostringstream out;
  out.precision(12);
  out << v;
  return out.str();
}

// The table of every key, bound to the fields of one ServerConfig.
class Schema {
 public:
  explicit Schema(ServerConfig& c) {
    Str("server.listen", c.listen, /*allow_empty=*/false);
    Int("server.max_receive_message_bytes", c.max_receive_message_bytes, 1024, 1LL << 30);
    Int("server.max_send_message_bytes", c.max_send_message_bytes, 1024, 1LL << 30);
    Real("server.shutdown_grace_seconds", c.shutdown_grace_seconds, 0, 3600);
    Int("server.stream_window", c.stream_window, 1, 1024);
    Str("server.ready_file", c.ready_file, true);
    Str("server.health_listen", c.health_listen, true);
    Str("tls.mode", c.tls_mode, false);
    Str("tls.cert_file", c.tls_cert_file, true);
    Str("tls.key_file", c.tls_key_file, true);
    Str("tls.client_ca_file", c.tls_client_ca_file, true);
    Str("auth.mode", c.auth_mode, false);
    Str("auth.api_keys_file", c.api_keys_file, true);
    Str("auth.api_keys_env", c.api_keys_env, true);
    Real("rate_limits.per_second", c.rate_limit.per_second, 0, 1e6);
    Real("rate_limits.burst", c.rate_limit.burst, 0, 1e6);
    Str("rate_limits.keys", c.rate_limit_keys, true);
    Str("audit.sink", c.audit_sink, false);
    Str("audit.file", c.audit_file, true);
    Bool("metrics.enabled", c.metrics_enabled);
    Str("metrics.listen", c.metrics_listen, false);
    Str("model.dir", c.model_dir, false);
    Str("model.device", c.device, false);
    Real("model.fallback_threshold", c.service.fallback_threshold, -1, 1);
    Int("inference.torch_threads", c.torch_threads, 0, 1024);
    Batching("inference.detect", c.detect);
    Batching("inference.embed", c.embed);
    Int("limits.max_image_bytes", c.service.limits.max_image_bytes, 1024, 1LL << 30);
    Int("limits.max_image_pixels", c.service.limits.max_image_pixels, 144, 1LL << 32);
    Int("limits.max_faces_per_image", c.service.limits.max_faces_per_image, 1, 10000);
    Int("limits.max_images_per_enroll", c.service.limits.max_images_per_enroll, 1, 10000);
    Int("limits.max_top_k", c.service.limits.max_top_k, 1, 100000);
    Int("limits.max_page_size", c.service.limits.max_page_size, 1, 100000);
    Int("limits.min_face_size_floor", c.service.limits.min_face_size_floor, 12, 10000);
    Int("limits.max_inflight_pixels", c.service.limits.max_inflight_pixels, 0, 1LL << 40);
    Int("limits.max_concurrent_calls", c.service.limits.max_concurrent_calls, 0, 1'000'000);
    Int("limits.detect_max_pixels", c.service.limits.detect_max_pixels, 0, 1LL << 32);
    Str("gallery.store", c.gallery_store, false);
    Str("gallery.path", c.gallery_path, false);
    Int("gallery.max_galleries", c.gallery_limits.max_galleries, 1, 1'000'000);
    Str("gallery.index.type", c.gallery_index.type, false);
    Str("gallery.index.faiss_factory", c.gallery_index.faiss_factory, false);
    Int("gallery.index.nprobe", c.gallery_index.nprobe, 1, 1'000'000);
    Int("gallery.index.ef_search", c.gallery_index.ef_search, 1, 1'000'000);
    Int("gallery.index.ivf_lists", c.gallery_index.ivf_lists, 1, IvfInt8Index::kMaxLists);
    Int("gallery.index.ivf_nprobe", c.gallery_index.ivf_nprobe, 1, IvfInt8Index::kMaxLists);
    Int("gallery.index.exact_below", c.gallery_index.exact_below, 0, std::numeric_limits<int64_t>::max());
    Int("gallery.index.rerank_factor", c.gallery_index.rerank_factor, 1, 1000);
    Str("gallery.postgres.dsn", c.postgres_dsn, true);
    Str("gallery.postgres.password_file", c.postgres_password_file, true);
    Millis("gallery.postgres.poll_interval_ms", c.service.follow.poll_interval, 10, 600'000);
    Millis("gallery.postgres.stale_after_ms", c.service.follow.stale_after, 100, 86'400'000);
    Int("gallery.max_templates", c.gallery_limits.max_templates, 1, std::numeric_limits<int64_t>::max());
    Int("gallery.max_templates_per_identity", c.gallery_limits.max_templates_per_identity, 1,
        std::numeric_limits<int64_t>::max());
    Bool("gallery.keep_face_crops", c.service.keep_face_crops);
    Level("quality.enroll_min_level", c.service.quality.enroll_min);
    Level("quality.probe_min_level", c.service.quality.probe_min);
    QualityPolicy& q = c.service.quality.policy;
    Real("quality.interocular_px.medium", q.interocular_medium_px, 0, 10000);
    Real("quality.interocular_px.low", q.interocular_low_px, 0, 10000);
    Real("quality.sharpness.medium", q.sharpness_medium, 0, 100);
    Real("quality.sharpness.low", q.sharpness_low, 0, 100);
    Real("quality.pose_deg.medium", q.pose_medium_deg, 0, 180);
    Real("quality.pose_deg.low", q.pose_low_deg, 0, 180);
    Real("quality.dark.medium", q.dark_medium, 0, 255);
    Real("quality.dark.low", q.dark_low, 0, 255);
    Real("quality.bright.medium", q.bright_medium, 0, 255);
    Real("quality.bright.low", q.bright_low, 0, 255);
    Real("quality.detector_score.medium", q.score_medium, 0, 1);
    Real("quality.detector_score.low", q.score_low, 0, 1);
    Bool("thresholds.gallery_calibration.enabled", c.service.gallery_calibration.enabled);
    Str("thresholds.gallery_calibration.operating_point", c.service.gallery_calibration.operating_point, false);
    Str("thresholds.gallery_calibration.gallery", c.service.gallery_calibration.gallery, false);
    Int("thresholds.gallery_calibration.refresh_seconds", c.service.gallery_calibration.refresh_seconds, 1, 86'400);
    Str("logging.level", c.log_level, false);
  }

  const Key* Find(const std::string& name) const {
    const auto it = keys_.find(name);
    return it == keys_.end() ? nullptr : &it->second;
  }
  std::string KnownKeys() const {
    std::vector<std::string> names;
    for (const auto& [name, key] : keys_) names.push_back(name);
    return absl::StrJoin(names, ", ");
  }
  // Nested YAML, one section per dotted prefix, keys in name order.
  std::string Write() const {
    std::string out;
    std::vector<std::string> open;  // the sections of the previous key
    for (const auto& [name, key] : keys_) {
      const std::vector<std::string> parts = absl::StrSplit(name, '.');
      size_t common = 0;
      while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) ++common;
      for (size_t i = common; i + 1 < parts.size(); ++i) {
        out += std::string(2 * i, ' ') + parts[i] + ":\n";
      }
      open.assign(parts.begin(), parts.end() - 1);
      out += std::string(2 * (parts.size() - 1), ' ') + parts.back() + ": " + key.show() + "\n";
    }
    return out;
  }

 private:
  template <typename T>
  static absl::StatusOr<T> As(const YAML::Node& node, const char* type_name) {
    if (!node.IsScalar())
      return absl::InvalidArgumentError(
          absl::StrCat("expected ", type_name, ", got a ", node.IsMap() ? "map" : "list"));
    try {
      return node.as<T>();
    } catch (const YAML::Exception&) {
      return absl::InvalidArgumentError(absl::StrCat("expected ", type_name, ", got '", node.Scalar(), "'"));
    }
  }

  template <typename T>
  void Int(const std::string& name, T& field, int64_t min, int64_t max) {
    keys_[name] =
        Key{[&field, min, max](const YAML::Node& n) -> absl::Status {
              VF_ASSIGN_OR_RETURN(const int64_t v, As<int64_t>(n, "an integer"));
              if (v < min || v > max) {
                return absl::InvalidArgumentError(absl::StrCat("value ", v, " is out of range [", min, ", ", max, "]"));
              }
              field = static_cast<T>(v);
              return absl::OkStatus();
            },
            [&field] { return std::to_string(static_cast<int64_t>(field)); }};
  }
  void Millis(const std::string& name, std::chrono::milliseconds& field, int64_t min, int64_t max) {
    keys_[name] =
        Key{[&field, min, max](const YAML::Node& n) -> absl::Status {
              VF_ASSIGN_OR_RETURN(const int64_t v, As<int64_t>(n, "an integer (milliseconds)"));
              if (v < min || v > max) {
                return absl::InvalidArgumentError(absl::StrCat("value ", v, " is out of range [", min, ", ", max, "]"));
              }
              field = std::chrono::milliseconds(v);
              return absl::OkStatus();
            },
            [&field] { return std::to_string(field.count()); }};
  }
  void Real(const std::string& name, double& field, double min, double max) {
    keys_[name] =
        Key{[&field, min, max](const YAML::Node& n) -> absl::Status {
              VF_ASSIGN_OR_RETURN(const double v, As<double>(n, "a number"));
              if (!(v >= min && v <= max)) {
                return absl::InvalidArgumentError(absl::StrCat("value ", v, " is out of range [", min, ", ", max, "]"));
              }
              field = v;
              return absl::OkStatus();
            },
            [&field] { return ShowNumber(field); }};
  }
  void Bool(const std::string& name, bool& field) {
    keys_[name] = Key{[&field](const YAML::Node& n) -> absl::Status {
                        VF_ASSIGN_OR_RETURN(field, As<bool>(n, "true or false"));
                        return absl::OkStatus();
                      },
                      [&field] { return std::string(field ? "true" : "false"); }};
  }
  void Str(const std::string& name, std::string& field, bool allow_empty) {
    keys_[name] = Key{[&field, allow_empty](const YAML::Node& n) -> absl::Status {
                        if (n.IsNull() && allow_empty) {
                          field.clear();
                          return absl::OkStatus();
                        }
                        VF_ASSIGN_OR_RETURN(std::string v, As<std::string>(n, "a string"));
                        if (v.empty() && !allow_empty) return absl::InvalidArgumentError("must not be empty");
                        field = std::move(v);
                        return absl::OkStatus();
                      },
                      [&field] { return Quoted(field); }};
  }
  void Level(const std::string& name, QualityLevel& field) {
    keys_[name] = Key{[&field](const YAML::Node& n) -> absl::Status {
                        VF_ASSIGN_OR_RETURN(const std::string v, As<std::string>(n, "low, medium or high"));
                        const QualityLevel level = ParseQualityLevel(v);
                        if (level == QualityLevel::kUnspecified) {
                          return absl::InvalidArgumentError(absl::StrCat("'", v, "' is not one of low, medium, high"));
                        }
                        field = level;
                        return absl::OkStatus();
                      },
                      [&field] { return absl::AsciiStrToLower(QualityLevelName(field)); }};
  }
  void Batching(const std::string& prefix, BatchingConfig& b) {
    Int(prefix + ".max_batch", b.max_batch, 1, 4096);
    Int(prefix + ".max_queue_delay_us", b.max_queue_delay_us, 0, 10'000'000);
    Int(prefix + ".max_queue_size", b.max_queue_size, 1, 1'000'000);
    Int(prefix + ".workers", b.workers, 1, 256);
  }

  std::map<std::string, Key> keys_;
};

// Keys that once existed, with what to use instead. Refused, not ignored: a file that set one meant
// something by it, and silently dropping it would change the server's behaviour unannounced.
struct RetiredKey {
  const char* name;
  const char* instead;
};
constexpr RetiredKey kRetiredKeys[] = {
    {"server.max_threads",
     "gRPC's thread quota, which it set, aborted the server when exhausted (bench/results/hardening); bound the "
     "calls in progress with limits.max_concurrent_calls instead"},
};

absl::Status Apply(const Schema& schema, const std::string& name, const YAML::Node& value, const std::string& where) {
  const Key* key = schema.Find(name);
  if (key == nullptr) {
    for (const RetiredKey& retired : kRetiredKeys) {
      if (name == retired.name) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": '", name, "' is no longer a key: ", retired.instead));
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown configuration key '", name, "' (known keys: ", schema.KnownKeys(), ")"));
  }
  const absl::Status s = key->read(value);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": '", name, "': ", s.message()));
  return absl::OkStatus();
}

// Applies every leaf of a YAML map, naming each by its dotted path.
absl::StatusOr<YAML::Node> ParseYaml(std::string_view text, const std::string& where) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not valid YAML: ", e.what()));
  }
}

absl::Status ApplyTree(const Schema& schema, const YAML::Node& node, const std::string& prefix,
                       const std::string& where) {
  if (!node.IsMap()) {
    if (prefix.empty() && node.IsNull()) return absl::OkStatus();  // an empty file
    if (prefix.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": expected a map of sections"));
    return Apply(schema, prefix, node, where);
  }
  for (const auto& item : node) {
    // YAML allows any node as a key ("? [a, b]: 1"); a configuration key is always a plain word.
    if (!item.first.IsScalar()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a key under '", prefix.empty() ? "(top)" : prefix, "' is not a plain name"));
    }
    const std::string name = absl::StrCat(prefix, prefix.empty() ? "" : ".", item.first.Scalar());
    if (item.second.IsMap()) {
      if (schema.Find(name) != nullptr) return Apply(schema, name, item.second, where);
      VF_RETURN_IF_ERROR(ApplyTree(schema, item.second, name, where));
    } else {
      VF_RETURN_IF_ERROR(Apply(schema, name, item.second, where));
    }
  }
  return absl::OkStatus();
}

// The TLS keys must agree with tls.mode, so that a forgotten mode never leaves a server in plaintext
// that was meant to use its certificate, and a missing file never silently turns TLS off.
absl::Status ValidateTls(const ServerConfig& c) {
  const std::pair<const char*, const std::string*> files[] = {{"tls.cert_file", &c.tls_cert_file},
                                                              {"tls.key_file", &c.tls_key_file},
                                                              {"tls.client_ca_file", &c.tls_client_ca_file}};
  if (c.tls_mode == "plaintext") {
    for (const auto& [name, value] : files) {
      if (!value->empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, " is set but tls.mode is \"plaintext\": set tls.mode to \"tls\" or \"mtls\" to use it, or leave ",
            name, " empty to serve plaintext"));
      }
    }
    return absl::OkStatus();
  }
  if (c.tls_mode != "tls" && c.tls_mode != "mtls") {
    return absl::InvalidArgumentError(absl::StrCat("tls.mode '", c.tls_mode, "' is not one of plaintext, tls, mtls"));
  }
  const bool mutual = c.tls_mode == "mtls";
  for (const auto& [name, value] : files) {
    const bool is_ca = value == &c.tls_client_ca_file;
    if (value->empty() && (!is_ca || mutual)) {
      return absl::InvalidArgumentError(absl::StrCat("tls.mode \"", c.tls_mode, "\" needs ", name));
    }
    if (!value->empty() && is_ca && !mutual) {
      return absl::InvalidArgumentError(
          "tls.client_ca_file is set but tls.mode is \"tls\": client certificates are checked only with tls.mode "
          "\"mtls\"");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAuth(const ServerConfig& c) {
  if (c.auth_mode == "api_keys") {
    if (c.api_keys_file.empty() && c.api_keys_env.empty()) {
      return absl::InvalidArgumentError(
          "auth.mode \"api_keys\" needs auth.api_keys_file or auth.api_keys_env to say where the keys are");
    }
    return absl::OkStatus();
  }
  if (c.auth_mode != "none") {
    return absl::InvalidArgumentError(absl::StrCat("auth.mode '", c.auth_mode, "' is not one of none, api_keys"));
  }
  if (!c.api_keys_file.empty()) {
    return absl::InvalidArgumentError(
        "auth.api_keys_file is set but auth.mode is \"none\": set auth.mode to \"api_keys\" to require its keys, "
        "or leave auth.api_keys_file empty");
  }
  return absl::OkStatus();
}

// A password in the DSN would be printed with the configuration; it belongs in a file or the environment.
bool DsnHasPassword(const std::string& dsn) {
  const std::string lower = absl::AsciiStrToLower(dsn);
  if (lower.find("password") != std::string::npos) return true;
  const size_t scheme = lower.find("://");
  if (scheme == std::string::npos) return false;
  const size_t at = lower.find('@', scheme + 3);
  const size_t colon = lower.find(':', scheme + 3);
  return at != std::string::npos && colon != std::string::npos && colon < at;
}

absl::Status ValidateGallery(const ServerConfig& c) {
  if (c.gallery_store == "sqlite") return absl::OkStatus();
  if (c.gallery_store != "postgres") {
    return absl::InvalidArgumentError(
        absl::StrCat("gallery.store '", c.gallery_store, "' is not one of sqlite, postgres"));
  }
  if (c.postgres_dsn.empty()) {
    return absl::InvalidArgumentError(
        "gallery.store postgres needs gallery.postgres.dsn (or VERIFACE_POSTGRES_DSN), e.g. "
        "\"host=db port=5432 dbname=veriface user=veriface\"");
  }
  if (DsnHasPassword(c.postgres_dsn)) {
    return absl::InvalidArgumentError(
        "gallery.postgres.dsn holds a password; put it in gallery.postgres.password_file or the "
        "VERIFACE_POSTGRES_PASSWORD environment variable instead (the DSN is logged, the password never is)");
  }
  return absl::OkStatus();
}

// Each measure's low bound lies beyond its medium bound, or the medium level could never be reached.
absl::Status ValidateQuality(const ServerConfig& c) {
  const QualityPolicy& q = c.service.quality.policy;
  struct Bounds {
    const char* name;
    double medium, low;
    bool larger_is_better;
  };
  const Bounds bounds[] = {{"quality.interocular_px", q.interocular_medium_px, q.interocular_low_px, true},
                           {"quality.sharpness", q.sharpness_medium, q.sharpness_low, true},
                           {"quality.pose_deg", q.pose_medium_deg, q.pose_low_deg, false},
                           {"quality.dark", q.dark_medium, q.dark_low, true},
                           {"quality.bright", q.bright_medium, q.bright_low, false},
                           {"quality.detector_score", q.score_medium, q.score_low, true}};
  for (const Bounds& b : bounds) {
    if (b.larger_is_better ? b.low > b.medium : b.low < b.medium) {
      return absl::InvalidArgumentError(absl::StrCat(b.name, ".low (", b.low, ") must be ",
                                                     b.larger_is_better ? "at most" : "at least", " ", b.name,
                                                     ".medium (", b.medium, ")"));
    }
  }
  return FarOfOperatingPoint(c.service.gallery_calibration.operating_point,
                             "thresholds.gallery_calibration.operating_point")
      .status();
}

absl::Status Validate(const ServerConfig& c) {
  VF_RETURN_IF_ERROR(ValidateGallery(c));
  VF_RETURN_IF_ERROR(ValidateQuality(c));
  if (c.service.fallback_threshold < -1 || c.service.fallback_threshold > 1) {
    return absl::InvalidArgumentError("model.fallback_threshold must be in [-1, 1]");
  }
  // Port 0 asks for a free port, different for each listener.
  const bool any_port = c.listen.size() >= 2 && c.listen.compare(c.listen.size() - 2, 2, ":0") == 0;
  if (c.metrics_enabled && c.metrics_listen == c.listen && !any_port) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen and server.listen are both '", c.listen, "'; the metrics need their own port"));
  }
  if (!c.health_listen.empty() && !any_port &&
      (c.health_listen == c.listen || (c.metrics_enabled && c.health_listen == c.metrics_listen))) {
    return absl::InvalidArgumentError(absl::StrCat("server.health_listen '", c.health_listen,
                                                   "' is the address of another listener; it needs its own port"));
  }
  VF_RETURN_IF_ERROR(ValidateTls(c));
  VF_RETURN_IF_ERROR(ValidateAuth(c));
  VF_RETURN_IF_ERROR(ParseKeyRateLimits(c.rate_limit_keys).status());
  if (c.rate_limit.burst > 0 && c.rate_limit.burst < 1) {
    return absl::InvalidArgumentError("rate_limits.burst must be 0 (as many as per_second) or at least 1 call");
  }
  VF_ASSIGN_OR_RETURN(const AuditSink sink, ParseAuditSink(c.audit_sink));
  if ((sink == AuditSink::kFile) != !c.audit_file.empty()) {
    return absl::InvalidArgumentError(c.audit_file.empty()
                                          ? "audit.sink \"file\" needs audit.file, the path to append to"
                                          : "audit.file is set but audit.sink is not \"file\"");
  }
  if (c.service.limits.max_image_bytes > c.max_receive_message_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("limits.max_image_bytes (", c.service.limits.max_image_bytes,
                                                   ") is larger than server.max_receive_message_bytes (",
                                                   c.max_receive_message_bytes, "): no such image could arrive"));
  }
  if (c.service.limits.max_inflight_pixels > 0 &&
      c.service.limits.max_inflight_pixels < c.service.limits.max_image_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("limits.max_inflight_pixels (", c.service.limits.max_inflight_pixels,
                                                   ") is smaller than limits.max_image_pixels (",
                                                   c.service.limits.max_image_pixels,
                                                   "): an image the server admits could never be decoded"));
  }
  static const char* const kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  bool level_ok = false;
  for (const char* level : kLevels) level_ok = level_ok || c.log_level == level;
  if (!level_ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("logging.level '", c.log_level, "' is not one of trace, debug, info, warn, error, critical, off"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> LoadConfig(const std::string& path,
                                        const std::vector<std::pair<std::string, std::string>>& overrides) {
  if (path.empty()) return ParseConfig("", "", overrides);
  const auto text = ReadFileToString(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read configuration file '", path, "': ", text.status().message()));
  }
  return ParseConfig(*text, path, overrides);
}

absl::StatusOr<ServerConfig> ParseConfig(std::string_view yaml, const std::string& where,
                                         const std::vector<std::pair<std::string, std::string>>& overrides) {
  ServerConfig config;
  const Schema schema(config);
  if (!where.empty()) {
    VF_ASSIGN_OR_RETURN(const YAML::Node root, ParseYaml(yaml, where));
    VF_RETURN_IF_ERROR(ApplyTree(schema, root, "", where));
  }
  for (const auto& [name, text] : overrides) {
    YAML::Node value;
    try {
      value = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("--set ", name, "=", text, ": not a valid value: ", e.what()));
    }
    if (value.IsNull() && !text.empty()) value = YAML::Node(text);
    VF_RETURN_IF_ERROR(Apply(schema, name, value, "command line"));
  }
  VF_RETURN_IF_ERROR(Validate(config));
  return config;
}

std::string ConfigToYaml(const ServerConfig& config) {
  ServerConfig copy = config;
  return Schema(copy).Write();
}

}  // namespace veriface::server
