#pragma once
// Reads an image's format and pixel dimensions from its first bytes, without decoding it, so that a
// small file claiming 20000 x 20000 pixels is refused before anything is allocated for it.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace veriface {

struct ImageHeader {
  std::string format;  // "jpeg", "png", "bmp", "pnm", "webp"
  int64_t width = 0;
  int64_t height = 0;

  // width * height, saturating: a header may claim 2^32 x 2^32 pixels, whose product overflows int64.
  int64_t pixels() const;
};

// INVALID_ARGUMENT for data that is not one of the formats above or whose header is cut short.
absl::StatusOr<ImageHeader> ReadImageHeader(std::string_view bytes);

}  // namespace veriface
