#include "core/model/crop_embedding.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/align/face_crop.h"

namespace veriface {

absl::StatusOr<std::vector<std::vector<float>>> EmbedFaceCrops(const FaceModel& model,
                                                               const std::vector<FaceCrop>& crops) {
  std::vector<FaceViews> views;
  views.reserve(crops.size());
  for (size_t i = 0; i < crops.size(); ++i) {
    absl::StatusOr<OpenedFaceCrop> opened = OpenFaceCrop(crops[i]);
    if (!opened.ok()) {
      return absl::Status(opened.status().code(), absl::StrCat("crop ", i, ": ", opened.status().message()));
    }
    views.push_back(model.Cut(opened->rgb, opened->face));
  }
  if (views.empty()) return std::vector<std::vector<float>>{};
  return model.EmbedRows(views);
}

}  // namespace veriface
