// Image header checks and decoding: any bytes get an image or a status, never a crash; a decoded image is
// always RGB, within the limits, and no larger than its header claimed.

#include <cstdint>
#include <string_view>

#include "core/image/decode.h"
#include "core/image/image_header.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto header = veriface::ReadImageHeader(bytes);
  // Limits far below the server's, so that each input decodes in milliseconds.
  veriface::DecodeLimits limits;
  limits.max_bytes = 1 << 20;
  limits.max_pixels = 1 << 20;
  const auto image = veriface::DecodeImage(bytes, limits);
  if (!image.ok()) return 0;
  FUZZ_CHECK(header.ok(), "an image decoded although its header was refused");
  FUZZ_CHECK(image->type() == CV_8UC3, "a decoded image is not 8-bit RGB");
  const int64_t pixels = static_cast<int64_t>(image->rows) * image->cols;
  FUZZ_CHECK(pixels <= limits.max_pixels, "a decoded image exceeds max_pixels");
  FUZZ_CHECK(image->rows >= limits.min_side && image->cols >= limits.min_side, "a decoded image is under min_side");
  // EXIF orientation may swap the sides; the pixel count is what the header vouches for.
  FUZZ_CHECK(pixels == header->width * header->height, "the decoded size differs from the header's");
  return 0;
}
