#include "server/credentials.h"

#include <grpcpp/security/server_credentials.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"

namespace veriface::server {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioDeleter>;
using Certificate = std::unique_ptr<X509, X509Deleter>;
using PrivateKey = std::unique_ptr<EVP_PKEY, KeyDeleter>;

Bio MemoryBio(const std::string& pem) { return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// OpenSSL's password callback: never prompt on the terminal for an encrypted key, just fail.
int NoPassword(char*, int, int, void*) { return -1; }

// The file's text, with the configuration key in the error.
absl::StatusOr<std::string> ReadPem(const std::string& key, const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat(key, ": ", text.status().message()));
  return text;
}

// Every certificate of a PEM file, in order; an error when there is none.
absl::StatusOr<std::vector<Certificate>> ReadCertificates(const std::string& key, const std::string& path,
                                                          const std::string& pem) {
  std::vector<Certificate> certificates;
  const Bio bio = MemoryBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr)) certificates.emplace_back(x);
  ERR_clear_error();  // the end of the file reads as an error
  if (certificates.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " '", path, "' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
  }
  return certificates;
}

void WarnIfExpired(const std::string& key, const std::string& path, const X509* certificate) {
  if (X509_cmp_current_time(X509_get0_notAfter(certificate)) < 0) {
    spdlog::warn("{} '{}': the certificate has expired; clients will refuse it", key, path);
  } else if (X509_cmp_current_time(X509_get0_notBefore(certificate)) > 0) {
    spdlog::warn("{} '{}': the certificate is not valid yet; clients will refuse it", key, path);
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerConfig& config) {
  if (config.tls_mode == "plaintext") return grpc::InsecureServerCredentials();

  // gRPC would only say "handshake failed" to each client; checking here names the file at start-up.
  VF_ASSIGN_OR_RETURN(const std::string chain, ReadPem("tls.cert_file", config.tls_cert_file));
  VF_ASSIGN_OR_RETURN(const std::string key_pem, ReadPem("tls.key_file", config.tls_key_file));
  VF_ASSIGN_OR_RETURN(const auto certificates, ReadCertificates("tls.cert_file", config.tls_cert_file, chain));
  const Bio key_bio = MemoryBio(key_pem);
  const PrivateKey key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("tls.key_file '", config.tls_key_file,
                                                   "' holds no unencrypted PEM private key (-----BEGIN PRIVATE "
                                                   "KEY----- or -----BEGIN RSA/EC PRIVATE KEY-----)"));
  }
  if (X509_check_private_key(certificates.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("tls.key_file '", config.tls_key_file,
                                                   "' is not the private key of the first certificate in "
                                                   "tls.cert_file '",
                                                   config.tls_cert_file, "'"));
  }
  WarnIfExpired("tls.cert_file", config.tls_cert_file, certificates.front().get());

  const bool mutual = config.tls_mode == "mtls";
  grpc::SslServerCredentialsOptions options(mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({key_pem, chain});
  if (mutual) {
    VF_ASSIGN_OR_RETURN(options.pem_root_certs, ReadPem("tls.client_ca_file", config.tls_client_ca_file));
    VF_RETURN_IF_ERROR(
        ReadCertificates("tls.client_ca_file", config.tls_client_ca_file, options.pem_root_certs).status());
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace veriface::server
