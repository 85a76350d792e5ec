#pragma once
// The audit trail of writes: one JSON line for every call that changes (or tries to change) a gallery:
// Enroll, each EnrollStream item, DeleteIdentity, CreateGallery and DeleteGallery, with the time, the
// method, the gallery, the identity and template ids, the request id, the API key's name (never the key),
// the peer address and the outcome. Refused and failed writes are recorded too: who tried matters as much
// as who succeeded.
//
// Sinks (audit.sink): "log" (the server's log, at info, prefixed "audit "), "file" (audit.file, appended
// one line per write(2), so that lines from concurrent calls never interleave; SIGHUP reopens it for log
// rotation), or "none".

#include <grpcpp/support/status.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface::server {

struct AuditEvent {
  std::string method;    // "Enroll", "EnrollStream", "DeleteIdentity", ...
  std::string key_name;  // the API key's name; empty when the server requires no keys
  std::string peer;      // gRPC's peer string, e.g. "ipv4:10.0.0.7:51234"
  std::string gallery;   // as the caller named it (empty: the default gallery)
  std::string identity;
  std::vector<std::string> template_ids;  // made (Enroll) or removed (DeleteIdentity)
  std::string request_id;
  int64_t stream_index = -1;  // the item's index in an EnrollStream; -1 otherwise
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string error;  // the status message when not OK
};

enum class AuditSink { kLog, kFile, kNone };

// "log", "file" or "none" (audit.sink); INVALID_ARGUMENT naming the three otherwise.
absl::StatusOr<AuditSink> ParseAuditSink(const std::string& name);

// One event as its JSON line (no newline); `time` is RFC 3339 in UTC.
std::string AuditLine(const AuditEvent& event, const std::string& time);

class AuditLog {
  struct Token {};  // only Open makes an AuditLog

 public:
  // `path` is the file sink's; the error names it when it cannot be opened for appending.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditSink sink, const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Thread-safe. A failed write is logged as an error; the call it records has already happened.
  void Record(const AuditEvent& event);
  // For the file sink: opens the path again (after a log rotation moved the old file away).
  absl::Status Reopen();

  AuditLog(Token, AuditSink sink, std::string path) : sink_(sink), path_(std::move(path)) {}

 private:
  const AuditSink sink_;
  const std::string path_;
  std::mutex mutex_;
  int fd_ = -1;  // the file sink's descriptor, guarded by mutex_
};

}  // namespace veriface::server
