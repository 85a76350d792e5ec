#include "core/model/crop_embedding.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/align/face_crop.h"
#include "core/common/status_macros.h"

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
  VF_ASSIGN_OR_RETURN(const torch::Tensor embedded, model.Embed(views));
  const torch::Tensor rows = embedded.to(torch::kCPU, torch::kFloat32).contiguous();
  std::vector<std::vector<float>> out;
  out.reserve(crops.size());
  for (int64_t r = 0; r < rows.size(0); ++r) {
    const float* row = rows[r].data_ptr<float>();
    out.emplace_back(row, row + rows.size(1));
  }
  return out;
}

}  // namespace veriface
