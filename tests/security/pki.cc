#include "tests/security/pki.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/server/server_process.h"

namespace veriface::testing {
namespace {

absl::Status Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv[0] = "/usr/bin/openssl";
  const CommandResult r = RunCommand(argv, std::chrono::seconds(60));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), " failed (", r.exit_code, "): ", r.err));
  }
  return absl::OkStatus();
}

// A self-signed CA certificate and its key.
absl::Status MakeCa(const std::string& cert, const std::string& key, const std::string& name) {
  return Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                  "-out", cert, "-days", "2", "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
}

// A leaf certificate signed by the CA, with the extensions written to `ext_file`.
absl::Status MakeLeaf(const std::string& dir, const std::string& name, const std::string& cn,
                      const std::string& extensions, const std::string& ca_cert, const std::string& ca_key,
                      int serial) {
  const std::string key = absl::StrCat(dir, "/", name, ".key"), csr = absl::StrCat(dir, "/", name, ".csr"),
                    cert = absl::StrCat(dir, "/", name, ".pem"), ext = absl::StrCat(dir, "/", name, ".ext");
  std::ofstream(ext) << extensions;
  if (absl::Status s = Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                                key, "-out", csr, "-subj", "/CN=" + cn});
      !s.ok()) {
    return s;
  }
  return Openssl({"x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", std::to_string(serial),
                  "-days", "2", "-out", cert, "-extfile", ext});
}

}  // namespace

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  TestPki pki;
  pki.ca_cert = dir + "/ca.pem";
  pki.other_ca_cert = dir + "/other-ca.pem";
  const std::string ca_key = dir + "/ca.key", other_ca_key = dir + "/other-ca.key";
  if (absl::Status s = MakeCa(pki.ca_cert, ca_key, "Veriface Test CA"); !s.ok()) return s;
  if (absl::Status s = MakeCa(pki.other_ca_cert, other_ca_key, "Unrelated Test CA"); !s.ok()) return s;
  const std::string server_ext =
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
      "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  const std::string client_ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";
  if (absl::Status s = MakeLeaf(dir, "server", "localhost", server_ext, pki.ca_cert, ca_key, 1001); !s.ok()) return s;
  if (absl::Status s = MakeLeaf(dir, "client", "veriface-test-client", client_ext, pki.ca_cert, ca_key, 1002);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          MakeLeaf(dir, "other-client", "veriface-test-client", client_ext, pki.other_ca_cert, other_ca_key, 2001);
      !s.ok()) {
    return s;
  }
  pki.server_cert = dir + "/server.pem";
  pki.server_key = dir + "/server.key";
  pki.client_cert = dir + "/client.pem";
  pki.client_key = dir + "/client.key";
  pki.other_client_cert = dir + "/other-client.pem";
  pki.other_client_key = dir + "/other-client.key";
  return pki;
}

std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(const std::string& ca_file, const std::string& cert_file,
                                                         const std::string& key_file) {
  grpc::SslCredentialsOptions options;
  if (!ca_file.empty()) options.pem_root_certs = ReadBytes(ca_file);
  if (!cert_file.empty()) {
    options.pem_cert_chain = ReadBytes(cert_file);
    options.pem_private_key = ReadBytes(key_file);
  }
  return grpc::SslCredentials(options);
}

}  // namespace veriface::testing
