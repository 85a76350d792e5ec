#pragma once
// The transport security the server listens with: the seam where TLS and mutual TLS plug in. Today
// every listener is plaintext.

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace veriface::server {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerConfig& config);

}  // namespace veriface::server
