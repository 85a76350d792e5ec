#include "server/credentials.h"

namespace veriface::server {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerConfig&) {
  return grpc::InsecureServerCredentials();
}

}  // namespace veriface::server
