#include "client/connection.h"

#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace veriface::client {
namespace {

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const auto i = static_cast<size_t>(code);
  return i < std::size(kNames) ? kNames[i] : "UNKNOWN";
}

absl::StatusOr<std::string> ReadText(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Reads a PEM file for `flag`, checking that it holds a PEM block of the expected kind.
absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path, const std::string& what) {
  auto text = ReadText(flag, path);
  if (!text.ok()) return text.status();
  if (text->find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", path, "' is not a PEM file (expected ", what, ")"));
  }
  return text;
}

}  // namespace

bool UsesTls(const ConnectionOptions& o) {
  return o.tls || !o.tls_ca_file.empty() || !o.tls_cert_file.empty() || !o.tls_key_file.empty() ||
         !o.tls_server_name.empty();
}

absl::Status LoadConnectionFiles(ConnectionOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together: a client certificate needs its key");
  }
  if (!options.tls_ca_file.empty()) {
    auto pem = ReadPem("--tls-ca", options.tls_ca_file, "CA certificates");
    if (!pem.ok()) return pem.status();
    options.ca_pem = *std::move(pem);
  }
  if (!options.tls_cert_file.empty()) {
    auto cert = ReadPem("--tls-cert", options.tls_cert_file, "a certificate");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem("--tls-key", options.tls_key_file, "a private key");
    if (!key.ok()) return key.status();
    options.cert_pem = *std::move(cert);
    options.key_pem = *std::move(key);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path) {
  auto text = ReadText("--api-key-file", path);
  if (!text.ok()) return text.status();
  const std::string key(absl::StripAsciiWhitespace(text->substr(0, text->find('\n'))));
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat("--api-key-file: '", path, "' holds no key"));
  return key;
}

std::shared_ptr<grpc::Channel> MakeChannel(const ConnectionOptions& options) {
  grpc::ChannelArguments args;
  // As large as the server's default receive limit: bulk Enroll requests carry several images.
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  // Its own connections, not those of gRPC's process-wide pool: a retry opens a new channel to dial
  // afresh, which it could not do while sharing a connection that waits out its reconnect back-off.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (!UsesTls(options)) return grpc::CreateCustomChannel(options.server, grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.ca_pem;
  ssl.pem_cert_chain = options.cert_pem;
  ssl.pem_private_key = options.key_pem;
  if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  return grpc::CreateCustomChannel(options.server, grpc::SslCredentials(ssl), args);
}

void AddCredentials(const ConnectionOptions& options, grpc::ClientContext& context) {
  if (!options.api_key.empty()) context.AddMetadata("authorization", "Bearer " + options.api_key);
}

void PrepareContext(const ConnectionOptions& options, grpc::ClientContext& context) {
  if (options.timeout_seconds > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(
                             std::chrono::duration<double>(options.timeout_seconds)));
  }
  AddCredentials(options, context);
}

std::string Describe(const grpc::Status& status) {
  std::string out = CodeName(status.error_code());
  if (!status.error_message().empty()) out += ": " + status.error_message();
  return out;
}

}  // namespace veriface::client
