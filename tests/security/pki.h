#pragma once
// Certificates made by the test itself with the `openssl` command: a CA, a server certificate for
// localhost and 127.0.0.1 signed by it, a client certificate signed by it, and a second, unrelated CA
// with a client certificate of its own (which a mutual-TLS server must refuse).

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace veriface::testing {

struct TestPki {
  std::string ca_cert;  // PEM files, all in one directory
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string other_ca_cert;
  std::string other_client_cert, other_client_key;  // signed by the other CA
};

// Makes every file under `dir` (which must exist). The error carries openssl's output.
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

// TLS channel credentials trusting `ca_file` (empty: gRPC's default roots), with a client certificate
// when `cert_file` is given.
std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(const std::string& ca_file, const std::string& cert_file = "",
                                                         const std::string& key_file = "");

}  // namespace veriface::testing
