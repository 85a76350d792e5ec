#pragma once
// SHA-256 (OpenSSL) for pinning downloads, naming models by content and hashing API keys.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace veriface {

std::string Sha256Hex(std::string_view data);
absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path);

}  // namespace veriface
