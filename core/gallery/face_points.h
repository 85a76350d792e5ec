#pragma once
// How both stores keep a face crop's box, landmarks and score beside its JPEG: 15 float32 values in the
// machine's byte order, as embeddings are kept.

#include <string>

#include "absl/status/status.h"
#include "core/gallery/gallery_types.h"

namespace veriface {

std::string FacePointsBytes(const FaceCrop& crop);

// DATA_LOSS when `bytes` is not 15 float32 values.
absl::Status ReadFacePoints(const std::string& bytes, FaceCrop* crop);

}  // namespace veriface
