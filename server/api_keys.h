#pragma once
// API keys with roles, checked on every Veriface call (the health service is not guarded, so probes
// need no key). The server holds only the SHA-256 of each key, read from a file and/or an environment
// variable, one key per line:
//
//   # NAME     ROLE    SHA-256 of the key (hex)
//   dashboard  reader  sha256:0b4c...
//   ingest     writer  sha256:9f86...
//
// A reader may call Embed, Verify, Identify, GetIdentity, ListIdentities and GetModelInfo; a writer may
// also call Enroll, EnrollStream and DeleteIdentity. Callers send the key as `authorization: Bearer KEY`
// or `x-api-key: KEY` metadata. A presented key is hashed and compared with every stored hash in
// constant time (CRYPTO_memcmp), and neither the key nor its hash is ever logged; only the NAME is.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/call_guard.h"
#include "server/config.h"

namespace veriface::server {

enum class Role { kReader, kWriter };

// "reader", "writer".
const char* RoleName(Role role);

// The least role that may call `rpc`.
Role RequiredRole(Rpc rpc);

struct ApiKey {
  std::string name;  // for logs and messages: never secret
  Role role = Role::kReader;
  std::string sha256_hex;  // 64 lowercase hex digits
};

// Parses key lines (separated by newlines or ';'; blank lines and '#' comments skipped). `where` names
// the source in errors ("keys.txt", "$VERIFACE_API_KEYS"), each with its line number; an error never
// quotes a hash.
absl::StatusOr<std::vector<ApiKey>> ParseApiKeys(const std::string& text, const std::string& where);

// The guard that requires a known key of a sufficient role.
class ApiKeyGuard final : public CallGuard {
 public:
  explicit ApiKeyGuard(std::vector<ApiKey> keys);
  Admission Admit(const grpc::ServerContext& context, Rpc rpc) const override;

 private:
  const std::vector<ApiKey> keys_;
};

// The guard the configuration asks for: AllowAllGuard for auth.mode "none", else an ApiKeyGuard with
// the keys of auth.api_keys_file and the variable auth.api_keys_env names (at least one key in all).
// Refuses auth.mode "none" while that variable holds keys, so that keys meant for the server are never
// silently ignored.
absl::StatusOr<std::shared_ptr<const CallGuard>> MakeCallGuard(const ServerConfig& config);

}  // namespace veriface::server
