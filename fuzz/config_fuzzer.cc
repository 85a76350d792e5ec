// The server's configuration file: any text gets a configuration or a status naming the problem, never a
// crash; a configuration that parses is reproduced by its own printed form (--print-config).

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto config = veriface::server::ParseConfig(text, "fuzz.yaml", {});
  if (!config.ok()) {
    FUZZ_CHECK(!config.status().message().empty(), "a configuration was refused without a message");
    return 0;
  }
  const std::string printed = veriface::server::ConfigToYaml(*config);
  const auto again = veriface::server::ParseConfig(printed, "printed.yaml", {});
  FUZZ_CHECK(again.ok(), "--print-config's output does not parse");
  FUZZ_CHECK(veriface::server::ConfigToYaml(*again) == printed, "--print-config's output reads differently");
  return 0;
}
