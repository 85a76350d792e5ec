#pragma once
// Embeddings of the face crops templates keep (core/align/face_crop.h), for moving a gallery to this
// model: each crop is aligned from the landmarks stored with it, so no detection runs and the face is
// the one that was enrolled.

#include <vector>

#include "absl/status/statusor.h"
#include "core/gallery/gallery_types.h"
#include "core/model/face_model.h"

namespace veriface {

// Unit-length embeddings, one per crop, in order; DATA_LOSS names the crop that does not open.
absl::StatusOr<std::vector<std::vector<float>>> EmbedFaceCrops(const FaceModel& model,
                                                               const std::vector<FaceCrop>& crops);

}  // namespace veriface
