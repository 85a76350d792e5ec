#include "server/audit_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/metrics.h"

namespace veriface::server {
namespace {

absl::StatusOr<int> OpenForAppend(const std::string& path) {
  // 0600: the trail names identities and peers.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("audit.file '", path, "': ", std::strerror(errno)));
  }
  return fd;
}

}  // namespace

absl::StatusOr<AuditSink> ParseAuditSink(const std::string& name) {
  if (name == "log") return AuditSink::kLog;
  if (name == "file") return AuditSink::kFile;
  if (name == "none") return AuditSink::kNone;
  return absl::InvalidArgumentError(absl::StrCat("audit.sink '", name, "' is not one of log, file, none"));
}

std::string AuditLine(const AuditEvent& event, const std::string& time) {
  nlohmann::json j = {{"time", time},       {"method", event.method},   {"key", event.key_name},
                      {"peer", event.peer}, {"gallery", event.gallery}, {"code", StatusCodeName(event.code)}};
  if (!event.identity.empty()) j["identity"] = event.identity;
  if (!event.template_ids.empty()) j["template_ids"] = event.template_ids;
  if (!event.request_id.empty()) j["request_id"] = event.request_id;
  if (event.stream_index >= 0) j["stream_index"] = event.stream_index;
  if (!event.error.empty()) j["error"] = event.error;
  // Replace, not throw, on invalid UTF-8: an identity is validated UTF-8, but a refused one may not be.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditSink sink, const std::string& path) {
  auto log = std::make_unique<AuditLog>(Token{}, sink, path);
  if (sink == AuditSink::kFile) {
    auto fd = OpenForAppend(path);
    if (!fd.ok()) return fd.status();
    log->fd_ = *fd;
  }
  return log;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::Record(const AuditEvent& event) {
  if (sink_ == AuditSink::kNone) return;
  const std::string line = AuditLine(event, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()));
  if (sink_ == AuditSink::kLog) {
    spdlog::info("audit {}", line);
    return;
  }
  const std::string with_newline = line + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  // One write(2) per line on an O_APPEND descriptor: a line is never split by another's.
  const ssize_t written = ::write(fd_, with_newline.data(), with_newline.size());
  if (written != static_cast<ssize_t>(with_newline.size())) {
    spdlog::error("audit.file '{}': could not append a line ({}): {}", path_,
                  written < 0 ? std::strerror(errno) : "short write", line);
  }
}

absl::Status AuditLog::Reopen() {
  if (sink_ != AuditSink::kFile) return absl::OkStatus();
  auto fd = OpenForAppend(path_);
  if (!fd.ok()) return fd.status();
  std::lock_guard<std::mutex> lock(mutex_);
  ::close(fd_);
  fd_ = *fd;
  return absl::OkStatus();
}

}  // namespace veriface::server
