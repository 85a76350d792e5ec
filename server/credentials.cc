#include "server/credentials.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

// The checked material of one Reload.
struct Material {
  std::string identity_pem;  // the private key, then the certificate chain
  std::string roots_pem;     // mtls only
};

absl::StatusOr<Material> ReadMaterial(const std::string& mode, const std::string& cert_file,
                                      const std::string& key_file, const std::string& client_ca_file) {
  // gRPC would only say "handshake failed" to each client; checking here names the file.
  VF_ASSIGN_OR_RETURN(const std::string chain, ReadPem("tls.cert_file", cert_file));
  VF_ASSIGN_OR_RETURN(const std::string key_pem, ReadPem("tls.key_file", key_file));
  VF_ASSIGN_OR_RETURN(const auto certificates, ReadCertificates("tls.cert_file", cert_file, chain));
  const Bio key_bio = MemoryBio(key_pem);
  const PrivateKey key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("tls.key_file '", key_file,
                                                   "' holds no unencrypted PEM private key (-----BEGIN PRIVATE "
                                                   "KEY----- or -----BEGIN RSA/EC PRIVATE KEY-----)"));
  }
  if (X509_check_private_key(certificates.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("tls.key_file '", key_file,
                                                   "' is not the private key of the first certificate in "
                                                   "tls.cert_file '",
                                                   cert_file, "'"));
  }
  WarnIfExpired("tls.cert_file", cert_file, certificates.front().get());
  Material material;
  // OpenSSL's PEM readers skip blocks of other kinds, so one file serves as both the key file and the
  // certificate file of gRPC's watcher.
  material.identity_pem = absl::StrCat(key_pem, "\n", chain);
  if (mode == "mtls") {
    VF_ASSIGN_OR_RETURN(material.roots_pem, ReadPem("tls.client_ca_file", client_ca_file));
    VF_RETURN_IF_ERROR(ReadCertificates("tls.client_ca_file", client_ca_file, material.roots_pem).status());
  }
  return material;
}

// An in-memory file holding `text`, its descriptor close-on-exec.
absl::StatusOr<int> MemoryFile(const std::string& text) {
  const int fd = ::memfd_create("veriface-tls", MFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("memfd_create: ", std::strerror(errno)));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("writing the TLS material: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return fd;
}

// Puts `text` behind `*fd`: a fresh descriptor the first time, then atomically in place (dup2), so the
// path /proc/self/fd/N that gRPC's watcher reads always shows one whole version.
absl::Status Replace(int* fd, const std::string& text) {
  VF_ASSIGN_OR_RETURN(const int next, MemoryFile(text));
  if (*fd < 0) {
    *fd = next;
    return absl::OkStatus();
  }
  const bool swapped = ::dup2(next, *fd) >= 0;
  const int saved_errno = errno;
  ::close(next);
  if (!swapped) return absl::InternalError(absl::StrCat("dup2: ", std::strerror(saved_errno)));
  return absl::OkStatus();
}

std::string ProcPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

}  // namespace

TlsCertificates::TlsCertificates(Token, const ServerConfig& config)
    : mode_(config.tls_mode),
      cert_file_(config.tls_cert_file),
      key_file_(config.tls_key_file),
      client_ca_file_(config.tls_client_ca_file) {}

TlsCertificates::~TlsCertificates() {
  for (const int fd : {identity_fd_, roots_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

absl::Status TlsCertificates::Reload() {
  VF_ASSIGN_OR_RETURN(const Material material, ReadMaterial(mode_, cert_file_, key_file_, client_ca_file_));
  std::lock_guard<std::mutex> lock(mutex_);
  VF_RETURN_IF_ERROR(Replace(&identity_fd_, material.identity_pem));
  if (mode_ == "mtls") VF_RETURN_IF_ERROR(Replace(&roots_fd_, material.roots_pem));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<TlsCertificates>> TlsCertificates::Load(const ServerConfig& config) {
  auto certificates = std::make_shared<TlsCertificates>(Token{}, config);
  VF_RETURN_IF_ERROR(certificates->Reload());
  const bool mutual = config.tls_mode == "mtls";
  // The watcher re-reads the in-memory files every second; they change only in Reload.
  constexpr unsigned kRefreshSeconds = 1;
  const std::string identity = ProcPath(certificates->identity_fd_);
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      identity, identity, mutual ? ProcPath(certificates->roots_fd_) : std::string(), kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  certificates->credentials_ = grpc::experimental::TlsServerCredentials(options);
  if (certificates->credentials_ == nullptr) {
    return absl::InternalError("gRPC refused the TLS options (tls.mode, tls.*_file)");
  }
  return certificates;
}

absl::StatusOr<ServerSecurity> MakeServerCredentials(const ServerConfig& config) {
  if (config.tls_mode == "plaintext") return ServerSecurity{grpc::InsecureServerCredentials(), nullptr};
  VF_ASSIGN_OR_RETURN(auto certificates, TlsCertificates::Load(config));
  return ServerSecurity{certificates->credentials(), certificates};
}

}  // namespace veriface::server
