// model.json: any text gets a ModelSpec or a status, never a crash; a spec that parses survives its own
// round trip through ToJson unchanged.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/model/model_spec.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  const auto spec = veriface::ModelSpec::FromJson(j);
  if (!spec.ok()) return 0;
  const auto again = veriface::ModelSpec::FromJson(spec->ToJson());
  FUZZ_CHECK(again.ok(), "a spec's own ToJson does not parse");
  FUZZ_CHECK(again->ToJson() == spec->ToJson(), "a spec changed on its round trip through ToJson");
  return 0;
}
