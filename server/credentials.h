#pragma once
// The transport security the Veriface listener uses, from tls.mode: plaintext, TLS with the server's
// certificate, or mutual TLS that also requires and verifies a client certificate signed by
// tls.client_ca_file. The files are read and checked here (PEM, the key belongs to the certificate), so
// that a bad file stops the server at start-up with its name rather than failing every handshake.
//
// Certificates are reloaded on SIGHUP (Reload), without dropping connections: the listener takes its
// certificates from gRPC's file watcher, pointed at in-memory files (memfd) that only this class writes,
// and only with material that passed the same checks. So a certificate half-copied onto disk, or a key
// that does not match, is never served; it is refused with a log line and the old pair stays.

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace veriface::server {

class TlsCertificates {
  struct Token {};  // only Load makes one

 public:
  // INVALID_ARGUMENT naming the key and file when a file is missing, not PEM, or the key is not the
  // certificate's.
  static absl::StatusOr<std::shared_ptr<TlsCertificates>> Load(const ServerConfig& config);
  TlsCertificates(Token, const ServerConfig& config);
  ~TlsCertificates();
  TlsCertificates(const TlsCertificates&) = delete;
  TlsCertificates& operator=(const TlsCertificates&) = delete;

  // Reads and checks the files (again) and publishes them to the watcher's files; new handshakes use them
  // within a second (the watcher's period). On an error the certificates in use stay.
  absl::Status Reload();
  std::shared_ptr<grpc::ServerCredentials> credentials() const { return credentials_; }

 private:
  const std::string mode_, cert_file_, key_file_, client_ca_file_;
  std::mutex mutex_;      // one Reload at a time
  int identity_fd_ = -1;  // the key and its chain, in one file, so that one dup2 swaps both at once
  int roots_fd_ = -1;     // mtls: the client CA certificates
  std::shared_ptr<grpc::ServerCredentials> credentials_;
};

// What the listener is built with; `certificates` is null in plaintext.
struct ServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::shared_ptr<TlsCertificates> certificates;
};

absl::StatusOr<ServerSecurity> MakeServerCredentials(const ServerConfig& config);

}  // namespace veriface::server
