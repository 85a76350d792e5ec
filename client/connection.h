#pragma once
// How the client reaches the server: the channel (the seam for TLS) and the per-call context (deadline,
// and the seam for API keys).

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "proto/veriface/v1/veriface.grpc.pb.h"

namespace veriface::client {

struct ConnectionOptions {
  std::string server = "localhost:50051";
  double timeout_seconds = 30;  // per call; 0 means no deadline
};

std::shared_ptr<grpc::Channel> MakeChannel(const ConnectionOptions& options);

// Sets the call's deadline `timeout_seconds` from now.
void PrepareContext(const ConnectionOptions& options, grpc::ClientContext& context);

// "INVALID_ARGUMENT: images[0]: no face found ..." for an error, "OK" for success.
std::string Describe(const grpc::Status& status);

}  // namespace veriface::client
