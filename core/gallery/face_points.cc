#include "core/gallery/face_points.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace veriface {
namespace {

constexpr size_t kValues = std::tuple_size<decltype(FaceCrop::points)>::value + 1;  // and the score

}  // namespace

std::string FacePointsBytes(const FaceCrop& crop) {
  std::string bytes(kValues * sizeof(float), '\0');
  std::memcpy(bytes.data(), crop.points.data(), crop.points.size() * sizeof(float));
  std::memcpy(bytes.data() + crop.points.size() * sizeof(float), &crop.score, sizeof(float));
  return bytes;
}

absl::Status ReadFacePoints(const std::string& bytes, FaceCrop* crop) {
  if (bytes.size() != kValues * sizeof(float)) {
    return absl::DataLossError(
        absl::StrCat("a face crop's points are ", bytes.size(), " bytes; expected ", kValues, " float32 values"));
  }
  std::memcpy(crop->points.data(), bytes.data(), crop->points.size() * sizeof(float));
  std::memcpy(&crop->score, bytes.data() + crop->points.size() * sizeof(float), sizeof(float));
  return absl::OkStatus();
}

}  // namespace veriface
