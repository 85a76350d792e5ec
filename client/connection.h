#pragma once
// How the client reaches the server: the channel (plaintext, TLS, or mutual TLS with a client
// certificate) and the per-call context (deadline, and the API key as `authorization: Bearer` metadata).

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/veriface/v1/veriface.grpc.pb.h"

namespace veriface::client {

struct ConnectionOptions {
  std::string server = "localhost:50051";
  double timeout_seconds = 30;  // per call; 0 means no deadline

  // TLS is used when `tls` is set or any TLS file or the server name is given.
  bool tls = false;
  std::string tls_ca_file;      // PEM CA(s) that sign the server's certificate; empty: gRPC's default roots
  std::string tls_cert_file;    // PEM client certificate chain, for servers in mtls mode (with tls_key_file)
  std::string tls_key_file;     // its PEM private key
  std::string tls_server_name;  // the name the server's certificate must carry, when not the dialled host

  std::string api_key;  // sent with every call when not empty

  // Filled by LoadConnectionFiles from the files above.
  std::string ca_pem, cert_pem, key_pem;
};

bool UsesTls(const ConnectionOptions& options);

// Reads the TLS files (errors name the flag and the file) and checks that a client certificate comes
// with its key. Call once before MakeChannel.
absl::Status LoadConnectionFiles(ConnectionOptions& options);

// The first line of an API key file, without surrounding whitespace; an error for a missing or empty file.
absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path);

std::shared_ptr<grpc::Channel> MakeChannel(const ConnectionOptions& options);

// Adds the API key, if any, to the call's metadata.
void AddCredentials(const ConnectionOptions& options, grpc::ClientContext& context);

// Sets the call's deadline `timeout_seconds` from now, and adds the API key.
void PrepareContext(const ConnectionOptions& options, grpc::ClientContext& context);

// "INVALID_ARGUMENT: images[0]: no face found ..." for an error, "OK" for success.
std::string Describe(const grpc::Status& status);

}  // namespace veriface::client
