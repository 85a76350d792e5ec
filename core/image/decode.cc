#include "core/image/decode.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/image/image_header.h"

namespace veriface {

absl::StatusOr<cv::Mat> DecodeImage(std::string_view bytes, const DecodeLimits& limits) {
  if (static_cast<int64_t>(bytes.size()) > limits.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("image is ", bytes.size(), " bytes; the limit is ", limits.max_bytes));
  }
  VF_ASSIGN_OR_RETURN(const ImageHeader header, ReadImageHeader(bytes));
  if (header.width <= 0 || header.height <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(header.format, " header gives an empty image (", header.width, "x", header.height, ")"));
  }
  if (header.pixels() > limits.max_pixels) {
    return absl::ResourceExhaustedError(absl::StrCat(header.format, " image is ", header.width, "x", header.height,
                                                     " pixels; the limit is ", limits.max_pixels, " pixels"));
  }
  if (header.width < limits.min_side || header.height < limits.min_side) {
    return absl::InvalidArgumentError(absl::StrCat("image is ", header.width, "x", header.height,
                                                   "; both sides must be at least ", limits.min_side, " pixels"));
  }
  // imdecode needs a cv::Mat header over the bytes; it does not write to them.
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(buffer, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode ", header.format, " image: ", e.what()));
  }
  if (bgr.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode ", header.format, " image: corrupt or truncated"));
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

absl::StatusOr<cv::Mat> LoadImageFile(const std::string& path, const DecodeLimits& limits) {
  VF_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(path));
  auto image = DecodeImage(bytes, limits);
  if (!image.ok()) return absl::Status(image.status().code(), absl::StrCat(path, ": ", image.status().message()));
  return image;
}

}  // namespace veriface
