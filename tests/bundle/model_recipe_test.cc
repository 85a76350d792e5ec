// The model recipe that deploy/setup.sh applies instead of calibrating: read and checked, applied only to
// the model it names, and the shipped one in force in the default bundle.

#include "trainer/bundle/model_recipe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/model/model_spec.h"
#include "tests/testing/test_env.h"

namespace veriface {
namespace {

using ::testing::HasSubstr;

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

ModelSpec MinimalSpec(const std::string& model_id) {
  ModelSpec spec;
  spec.model_id = model_id;
  spec.detector.arch = "mtcnn";
  spec.backbone.arch = "face-resnet";
  spec.head.arch = "identity";
  return spec;
}

constexpr char kRecipe[] = R"({
  "model_id": "m-1",
  "default_operating_point": "far_1e-3",
  "thresholds": {"best_accuracy": 0.9, "far_1e-3": 0.93},
  "calibration": {"tool": "veriface-eval calibrate"},
  "accuracy": {"lfw_view2": {"mean_accuracy": 0.99}}
})";

TEST(ModelRecipe, AppliesToTheModelItNames) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteModelSpec(dir.path(), MinimalSpec("m-1")).ok());
  WriteText(dir.File("recipe.json"), kRecipe);
  const auto recipe = ReadModelRecipe(dir.File("recipe.json"));
  ASSERT_TRUE(recipe.ok()) << recipe.status();
  ASSERT_TRUE(ApplyModelRecipe(*recipe, "recipes/r.json", dir.path()).ok());
  const auto spec = ReadModelSpec(dir.path());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->thresholds.at("far_1e-3"), 0.93);
  EXPECT_EQ(spec->default_operating_point, "far_1e-3");
  EXPECT_EQ(*spec->DefaultThreshold(), 0.93);
  EXPECT_EQ(spec->calibration["from_recipe"], "recipes/r.json");
  EXPECT_EQ(spec->accuracy["lfw_view2"]["mean_accuracy"], 0.99);
}

TEST(ModelRecipe, LeavesAnotherModelUncalibrated) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteModelSpec(dir.path(), MinimalSpec("m-2")).ok());
  WriteText(dir.File("recipe.json"), kRecipe);
  const auto recipe = ReadModelRecipe(dir.File("recipe.json"));
  ASSERT_TRUE(recipe.ok());
  const absl::Status s = ApplyModelRecipe(*recipe, "r.json", dir.path());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("is for model m-1"));
  EXPECT_THAT(s.message(), HasSubstr("is model m-2"));
  EXPECT_TRUE(ReadModelSpec(dir.path())->thresholds.empty());
}

TEST(ModelRecipe, RefusesAFileThatIsNotARecipe) {
  testing::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[1, 2]", "not a JSON object"},
      {"{broken", "not a JSON object"},
      {R"({"thresholds": {"best_accuracy": 0.9}})", "model_id"},
      {R"({"model_id": "m", "thresholds": {}})", "thresholds must be"},
      {R"({"model_id": "m", "thresholds": {"best_accuracy": 3}})", "thresholds.best_accuracy"},
      {R"({"model_id": "m", "thresholds": {"far_1e-3": 0.9}})", "default_operating_point 'best_accuracy'"},
  };
  for (const auto& [text, want] : cases) {
    WriteText(dir.File("bad.json"), text);
    const auto r = ReadModelRecipe(dir.File("bad.json"));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(r.status().message(), HasSubstr(want)) << text;
  }
  EXPECT_FALSE(ReadModelRecipe(dir.File("missing.json")).ok());
}

// deploy/setup.sh converted the default bundle with the shipped recipe: it must be the recipe's model (or
// the recipe is stale and every fresh set-up recalibrates), carry its thresholds, and name no machine path.
TEST(ModelRecipe, TheShippedRecipeIsTheDefaultBundles) {
  const auto recipe = ReadModelRecipe(testing::SourceDir() + "/deploy/model-recipes/default.json");
  ASSERT_TRUE(recipe.ok()) << recipe.status();
  const auto spec = ReadModelSpec(testing::DefaultModelDir());
  ASSERT_TRUE(spec.ok()) << spec.status() << " (run deploy/setup.sh)";
  EXPECT_EQ(spec->model_id, recipe->model_id) << "the recipe is stale: bench/lfw/check_recipe.sh --update";
  EXPECT_EQ(spec->thresholds, recipe->thresholds);
  EXPECT_FALSE(recipe->accuracy.empty());
  const std::string text = recipe->calibration.dump() + recipe->accuracy.dump();
  EXPECT_EQ(text.find("\"/"), std::string::npos) << "an absolute path in the recipe";
}

}  // namespace
}  // namespace veriface
