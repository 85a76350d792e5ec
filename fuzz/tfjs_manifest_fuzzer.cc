// The TensorFlow.js weights reader: a manifest (JSON) and the bytes of its shards. The input is the
// manifest's text, then a NUL byte, then the bytes every shard name reads as; any input gets weights or a
// status, never a crash, and weights that parse hold exactly the values their shapes promise.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/tfjs/tfjs_weights.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view manifest = input.substr(0, split);
  const std::string shard = split == std::string_view::npos ? std::string() : std::string(input.substr(split + 1));
  const auto weights = veriface::TfjsWeights::Parse(
      manifest, "fuzz-manifest.json", [&shard](const std::string&) -> absl::StatusOr<std::string> { return shard; });
  if (!weights.ok()) return 0;
  for (const std::string& name : weights->names()) {
    FUZZ_CHECK(!weights->Get("no such tensor " + name, {1}).ok(), "a tensor was found under a name never given");
  }
  return 0;
}
