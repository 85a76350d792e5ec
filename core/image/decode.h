#pragma once
// Image decoding with limits: bytes in, an RGB matrix out, or a message a caller can act on.

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace veriface {

struct DecodeLimits {
  int64_t max_bytes = 16 << 20;     // encoded size
  int64_t max_pixels = 36'000'000;  // width * height, checked from the header before decoding
  int64_t min_side = 12;            // smaller images cannot hold a detectable face
};

// Decodes JPEG, PNG, BMP, PNM (PGM/PPM) or WebP into CV_8UC3 RGB. Grayscale is expanded, alpha is
// dropped, 16-bit is scaled to 8-bit, and a JPEG's EXIF orientation is applied, so the image is upright
// as a viewer would show it. Errors are INVALID_ARGUMENT (or RESOURCE_EXHAUSTED for over-limit sizes).
absl::StatusOr<cv::Mat> DecodeImage(std::string_view bytes, const DecodeLimits& limits = {});

// Reads and decodes a file; NOT_FOUND when it cannot be read.
absl::StatusOr<cv::Mat> LoadImageFile(const std::string& path, const DecodeLimits& limits = {});

}  // namespace veriface
