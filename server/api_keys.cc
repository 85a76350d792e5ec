#include "server/api_keys.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"

namespace veriface::server {
namespace {

constexpr char kHashPrefix[] = "sha256:";
constexpr size_t kHexDigits = 64;

grpc::Status Unauthenticated(const std::string& why) {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      absl::StrCat(why,
                                   "; send a key of this server as 'authorization: Bearer <key>' or 'x-api-key: <key>' "
                                   "metadata (the veriface client: --api-key-file or $VERIFACE_API_KEY)"));
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != '@') {
      return false;
    }
  }
  return true;
}

bool ValidHex(const std::string& hex) {
  if (hex.size() != kHexDigits) return false;
  for (const char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The key a call presents, or the status that refuses it.
absl::StatusOr<std::string_view> PresentedKey(const grpc::ServerContext& context) {
  const auto& metadata = context.client_metadata();
  if (const auto it = metadata.find("authorization"); it != metadata.end()) {
    const std::string_view value = Trim(std::string_view(it->second.data(), it->second.size()));
    constexpr std::string_view kScheme = "bearer ";
    if (value.size() < kScheme.size() || !absl::EqualsIgnoreCase(absl::string_view(value.data(), kScheme.size()),
                                                                 absl::string_view(kScheme.data(), kScheme.size()))) {
      // Not quoted: a caller may have put the key itself there.
      return absl::UnauthenticatedError("the authorization metadata is not of the form 'Bearer <key>'");
    }
    return Trim(value.substr(kScheme.size()));
  }
  if (const auto it = metadata.find("x-api-key"); it != metadata.end()) {
    return Trim(std::string_view(it->second.data(), it->second.size()));
  }
  return absl::UnauthenticatedError("the call carries no API key");
}

}  // namespace

const char* RoleName(Role role) { return role == Role::kWriter ? "writer" : "reader"; }

Role RequiredRole(Rpc rpc) { return RpcWritesGallery(rpc) ? Role::kWriter : Role::kReader; }

absl::StatusOr<std::vector<ApiKey>> ParseApiKeys(const std::string& text, const std::string& where) {
  std::vector<ApiKey> keys;
  int line_number = 0;
  for (const absl::string_view raw : absl::StrSplit(text, absl::ByAnyChar("\n;"))) {
    ++line_number;
    absl::string_view line = raw.substr(0, raw.find('#'));
    const std::vector<std::string> fields = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    const std::string at = absl::StrCat(where, " line ", line_number, ": ");
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(at, "expected 'NAME ROLE sha256:HEX', got ", fields.size(),
                                                     " field(s) (NAME and ROLE are shown here only when valid)"));
    }
    ApiKey key;
    key.name = fields[0];
    if (!ValidName(key.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, "a key name must be 1 to 64 letters, digits, '-', '_', '.' or '@'"));
    }
    if (fields[1] == "reader") {
      key.role = Role::kReader;
    } else if (fields[1] == "writer") {
      key.role = Role::kWriter;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(at, "key '", key.name, "' has an unknown role; the roles are reader and writer"));
    }
    const std::string& hash = fields[2];
    if (!absl::StartsWith(hash, kHashPrefix) || !ValidHex(hash.substr(sizeof(kHashPrefix) - 1))) {
      return absl::InvalidArgumentError(absl::StrCat(
          at, "key '", key.name,
          "': the third field must be sha256: and the 64 hex digits of the key's SHA-256 (printf %s KEY | sha256sum), "
          "never the key itself"));
    }
    key.sha256_hex = absl::AsciiStrToLower(hash.substr(sizeof(kHashPrefix) - 1));
    keys.push_back(std::move(key));
  }
  return keys;
}

ApiKeyGuard::ApiKeyGuard(std::vector<ApiKey> keys) : keys_(std::move(keys)) {}

Admission ApiKeyGuard::Admit(const grpc::ServerContext& context, Rpc rpc) const {
  const absl::StatusOr<std::string_view> presented = PresentedKey(context);
  if (!presented.ok()) return {Unauthenticated(std::string(presented.status().message())), ""};
  if (presented->empty()) return {Unauthenticated("the API key is empty"), ""};
  // Hashing first makes the comparisons independent of the presented key's length, and every stored
  // hash is compared, so the time taken does not depend on how much of a hash matched.
  const std::string hash = Sha256Hex(*presented);
  const ApiKey* match = nullptr;
  for (const ApiKey& key : keys_) {
    if (CRYPTO_memcmp(key.sha256_hex.data(), hash.data(), kHexDigits) == 0) match = &key;
  }
  if (match == nullptr) return {Unauthenticated("the API key is not one of this server's keys"), ""};
  const Role needed = RequiredRole(rpc);
  if (match->role < needed) {
    return {grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                         absl::StrCat("API key '", match->name, "' has role ", RoleName(match->role), "; ",
                                      RpcName(rpc), " needs role ", RoleName(needed))),
            match->name};
  }
  return {grpc::Status::OK, match->name};
}

absl::StatusOr<std::shared_ptr<const CallGuard>> MakeCallGuard(const ServerConfig& config) {
  const char* env = config.api_keys_env.empty() ? nullptr : std::getenv(config.api_keys_env.c_str());
  const std::string env_text = env == nullptr ? "" : env;
  const std::string env_where = absl::StrCat("$", config.api_keys_env);
  VF_ASSIGN_OR_RETURN(const std::vector<ApiKey> env_keys, ParseApiKeys(env_text, env_where));
  if (config.auth_mode == "none") {
    if (!env_keys.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          env_where, " holds ", env_keys.size(),
          " API key(s) but auth.mode is \"none\": set auth.mode to \"api_keys\" to require them, or unset ",
          config.api_keys_env));
    }
    return std::make_shared<AllowAllGuard>();
  }

  std::vector<ApiKey> keys;
  if (!config.api_keys_file.empty()) {
    auto text = ReadFileToString(config.api_keys_file);
    if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("auth.api_keys_file: ", text.status().message()));
    VF_ASSIGN_OR_RETURN(keys, ParseApiKeys(*text, config.api_keys_file));
  }
  keys.insert(keys.end(), env_keys.begin(), env_keys.end());
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "auth.mode is \"api_keys\" but no key was found (auth.api_keys_file '", config.api_keys_file, "', ",
        config.api_keys_env.empty() ? "no auth.api_keys_env" : env_where, "); a server nobody can call is refused"));
  }
  std::map<std::string, const ApiKey*> by_name, by_hash;
  for (const ApiKey& key : keys) {
    if (!by_name.emplace(key.name, &key).second) {
      return absl::InvalidArgumentError(absl::StrCat("API key name '", key.name, "' appears twice"));
    }
    if (const auto [it, added] = by_hash.emplace(key.sha256_hex, &key); !added) {
      return absl::InvalidArgumentError(
          absl::StrCat("API keys '", it->second->name, "' and '", key.name, "' are the same key"));
    }
  }
  std::vector<std::string> names;
  for (const ApiKey& key : keys) names.push_back(absl::StrCat(key.name, " (", RoleName(key.role), ")"));
  spdlog::info("API keys required on every Veriface call (health is open); {} key(s): {}", keys.size(),
               absl::StrJoin(names, ", "));
  return std::make_shared<ApiKeyGuard>(std::move(keys));
}

}  // namespace veriface::server
