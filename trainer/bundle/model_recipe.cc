#include "trainer/bundle/model_recipe.h"

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/model/model_spec.h"

namespace veriface {

using json = nlohmann::json;

absl::StatusOr<ModelRecipe> ReadModelRecipe(const std::string& path) {
  VF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("model recipe '", path, "': ", what));
  };
  if (!j.is_object()) return bad("not a JSON object");
  ModelRecipe r;
  if (!j.contains("model_id") || !j["model_id"].is_string() || j["model_id"].get<std::string>().empty()) {
    return bad("model_id must be a non-empty string");
  }
  r.model_id = j["model_id"].get<std::string>();
  if (!j.contains("thresholds") || !j["thresholds"].is_object() || j["thresholds"].empty()) {
    return bad("thresholds must be an object of operating point -> threshold");
  }
  for (const auto& [name, value] : j["thresholds"].items()) {
    if (!value.is_number() || !(value.get<double>() >= -1 && value.get<double>() <= 1)) {
      return bad(absl::StrCat("thresholds.", name, " must be a number in [-1, 1]"));
    }
    r.thresholds[name] = value.get<double>();
  }
  r.default_operating_point = j.value("default_operating_point", std::string("best_accuracy"));
  if (r.thresholds.count(r.default_operating_point) == 0) {
    return bad(absl::StrCat("default_operating_point '", r.default_operating_point, "' has no threshold"));
  }
  if (j.contains("calibration")) r.calibration = j["calibration"];
  if (j.contains("accuracy")) r.accuracy = j["accuracy"];
  if (!r.calibration.is_object() || !r.accuracy.is_object()) return bad("calibration and accuracy must be objects");
  return r;
}

absl::Status ApplyModelRecipe(const ModelRecipe& recipe, const std::string& recipe_path,
                              const std::string& bundle_dir) {
  VF_ASSIGN_OR_RETURN(ModelSpec spec, ReadModelSpec(bundle_dir));
  if (spec.model_id != recipe.model_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the recipe '", recipe_path, "' is for model ", recipe.model_id, ", but the bundle '", bundle_dir,
        "' is model ", spec.model_id, " (other weights or another test-time setting): calibrate it instead"));
  }
  spec.thresholds = recipe.thresholds;
  spec.default_operating_point = recipe.default_operating_point;
  spec.calibration = recipe.calibration;
  spec.calibration["from_recipe"] = recipe_path;
  spec.accuracy = recipe.accuracy;
  return WriteModelSpec(bundle_dir, spec);
}

}  // namespace veriface
