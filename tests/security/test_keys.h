#pragma once
// API keys for the security tests: fresh random keys and the key-file lines that name them.

#include <string>

namespace veriface::testing {

// "PREFIX-" and 128 random bits in hex.
std::string RandomKey(const std::string& prefix);

// One key-file line: "NAME ROLE sha256:HEX\n".
std::string KeyLine(const std::string& name, const std::string& role, const std::string& key);

}  // namespace veriface::testing
