#include "tests/security/test_keys.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/sha256.h"

namespace veriface::testing {

std::string RandomKey(const std::string& prefix) {
  std::random_device device;
  return absl::StrFormat("%s-%08x%08x%08x%08x", prefix, device(), device(), device(), device());
}

std::string KeyLine(const std::string& name, const std::string& role, const std::string& key) {
  return absl::StrCat(name, " ", role, " sha256:", Sha256Hex(key), "\n");
}

}  // namespace veriface::testing
