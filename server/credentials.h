#pragma once
// The transport security the Veriface listener uses, from tls.mode: plaintext, TLS with the server's
// certificate, or mutual TLS that also requires and verifies a client certificate signed by
// tls.client_ca_file. The files are read and checked here (PEM, the key belongs to the certificate), so
// that a bad file stops the server at start-up with its name rather than failing every handshake.
// Certificates are read once: replacing them takes a restart.

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace veriface::server {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerConfig& config);

}  // namespace veriface::server
