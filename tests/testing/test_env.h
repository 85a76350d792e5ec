#pragma once
// Where tests find their inputs. Shared data is read in place (never copied into the project):
// ../shared next to the checkout unless VERIFACE_SHARED_DIR says otherwise. The default model is
// the bundle deploy/setup.sh converts, models/default unless VERIFACE_MODEL_DIR says otherwise.

#include <memory>
#include <string>

#include "core/model/face_model.h"
#include "tests/testing/temp_dir.h"

namespace veriface::testing {

std::string SourceDir();
std::string SharedDir();
std::string LfwDir();
std::string GoldensDir();
std::string GroupPhotosDir();
std::string DefaultModelDir();
// The pinned weights deploy/setup.sh fetches into .cache: face-api.js's tfjs folder (VERIFACE_TFJS_WEIGHTS_DIR
// overrides it) and the tarball holding MobileFaceNet's TFLite file.
std::string FaceApiWeightsDir();
std::string MobileFaceNetTarball();

// The default bundle on the CPU, loaded once per test binary. Fails the calling test (with the command
// that makes the bundle) when it is missing.
std::shared_ptr<const FaceModel> DefaultModel();

}  // namespace veriface::testing
