#pragma once
// MobileFaceNet out of the pinned tarball deploy/setup.sh fetches into .cache/npm: the TFLite file's bytes,
// and the bundles veriface-import makes of it (alone, or fused with dlib's ResNet).

#include <gtest/gtest.h>

#include <string>

#include "tests/testing/test_env.h"
#include "trainer/bundle/npm_tarball.h"
#include "trainer/bundle/tfjs_import.h"

namespace veriface::testing {

// The file's bytes; fails the calling test (naming the command that fetches the tarball) when it is missing.
inline std::string PinnedMobileFaceNetBytes() {
  const TfliteSource source = PinnedMobileFaceNet(MobileFaceNetTarball());
  auto bytes = ReadPinnedTarballMember(source.tarball, source.sha256, source.member);
  if (!bytes.ok()) {
    ADD_FAILURE() << bytes.status().message() << " (deploy/setup.sh fetches it)";
    return {};
  }
  return *std::move(bytes);
}

// veriface-import --mobilefacenet [--fuse-face-resnet] into `bundle_dir`, MTCNN from face-api.js's weights.
inline absl::StatusOr<ModelSpec> ImportPinnedMobileFaceNet(const std::string& bundle_dir, bool with_face_resnet) {
  TfjsImportOptions options;
  options.weights_dir = FaceApiWeightsDir();
  options.bundle_dir = bundle_dir;
  return ImportMobileFaceNet(options, PinnedMobileFaceNet(MobileFaceNetTarball()), with_face_resnet);
}

}  // namespace veriface::testing
