#include "core/image/image_header.h"

#include <cctype>
#include <limits>

#include "absl/strings/str_cat.h"

namespace veriface {
namespace {

bool StartsWith(std::string_view b, std::string_view prefix) { return b.substr(0, prefix.size()) == prefix; }

uint32_t Be16(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 8) | static_cast<uint8_t>(b[at + 1]);
}
uint32_t Be32(std::string_view b, size_t at) { return (Be16(b, at) << 16) | Be16(b, at + 2); }
uint32_t Le16(std::string_view b, size_t at) {
  return static_cast<uint8_t>(b[at]) | (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8);
}
uint32_t Le24(std::string_view b, size_t at) {
  return Le16(b, at) | (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 16);
}
int32_t Le32(std::string_view b, size_t at) { return static_cast<int32_t>(Le16(b, at) | (Le16(b, at + 2) << 16)); }

absl::Status Truncated(const char* format) {
  return absl::InvalidArgumentError(absl::StrCat("truncated ", format, " header"));
}

absl::StatusOr<ImageHeader> Jpeg(std::string_view b) {
  // Walk the marker segments: the first start-of-frame holds the size; after the first start-of-scan
  // comes entropy-coded data, where 0xFF is always stuffed, so an end-of-image marker after it can only
  // be the real one. Without it the file was cut short, which libjpeg would paper over with grey.
  ImageHeader header{"jpeg", 0, 0};
  size_t at = 2;
  while (true) {
    while (at < b.size() && static_cast<uint8_t>(b[at]) != 0xFF) ++at;  // tolerate junk between segments
    while (at < b.size() && static_cast<uint8_t>(b[at]) == 0xFF) ++at;  // fill bytes
    if (at >= b.size()) return Truncated("JPEG");
    const uint8_t marker = static_cast<uint8_t>(b[at++]);
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue;  // no length
    if (marker == 0xD9) return absl::InvalidArgumentError("JPEG ends before any image data");
    if (at + 2 > b.size()) return Truncated("JPEG");
    const uint32_t length = Be16(b, at);
    if (length < 2) return absl::InvalidArgumentError("corrupt JPEG segment length");
    const bool start_of_frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (start_of_frame && header.width == 0) {
      if (at + 7 > b.size()) return Truncated("JPEG");
      header.height = Be16(b, at + 3);
      header.width = Be16(b, at + 5);
    }
    if (marker == 0xDA) {
      if (header.width == 0) return absl::InvalidArgumentError("JPEG image data before any frame header");
      if (b.find("\xFF\xD9", at) == std::string_view::npos) {
        return absl::InvalidArgumentError("JPEG is truncated: no end-of-image marker after the image data");
      }
      return header;
    }
    at += length;
  }
}

absl::StatusOr<ImageHeader> Png(std::string_view b) {
  if (b.size() < 24) return Truncated("PNG");
  if (b.substr(12, 4) != "IHDR") return absl::InvalidArgumentError("PNG without an IHDR chunk");
  return ImageHeader{"png", Be32(b, 16), Be32(b, 20)};
}

absl::StatusOr<ImageHeader> Bmp(std::string_view b) {
  if (b.size() < 26) return Truncated("BMP");
  const int32_t w = Le32(b, 18), h = Le32(b, 22);
  return ImageHeader{"bmp", std::abs(static_cast<int64_t>(w)), std::abs(static_cast<int64_t>(h))};
}

absl::StatusOr<ImageHeader> Pnm(std::string_view b) {
  // "P5 <w> <h> ...": whitespace-separated decimal fields, '#' comments to end of line.
  size_t at = 2;
  int64_t fields[2] = {0, 0};
  for (int64_t& field : fields) {
    while (at < b.size() && (std::isspace(static_cast<unsigned char>(b[at])) || b[at] == '#')) {
      if (b[at] == '#') {
        while (at < b.size() && b[at] != '\n') ++at;
      } else {
        ++at;
      }
    }
    if (at >= b.size() || !std::isdigit(static_cast<unsigned char>(b[at]))) return Truncated("PNM");
    while (at < b.size() && std::isdigit(static_cast<unsigned char>(b[at]))) {
      field = field * 10 + (b[at++] - '0');
      if (field > (int64_t{1} << 40)) return absl::InvalidArgumentError("PNM size out of range");
    }
  }
  return ImageHeader{"pnm", fields[0], fields[1]};
}

absl::StatusOr<ImageHeader> Webp(std::string_view b) {
  if (b.size() < 30) return Truncated("WebP");
  const std::string_view chunk = b.substr(12, 4);
  if (chunk == "VP8 ") return ImageHeader{"webp", Le16(b, 26) & 0x3FFF, Le16(b, 28) & 0x3FFF};
  if (chunk == "VP8L") {
    const uint32_t bits = static_cast<uint32_t>(Le32(b, 21));
    return ImageHeader{"webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (chunk == "VP8X") return ImageHeader{"webp", Le24(b, 24) + 1, Le24(b, 27) + 1};
  return absl::InvalidArgumentError("unknown WebP chunk");
}

}  // namespace

int64_t ImageHeader::pixels() const {
  if (width <= 0 || height <= 0) return 0;
  if (width > std::numeric_limits<int64_t>::max() / height) return std::numeric_limits<int64_t>::max();
  return width * height;
}

absl::StatusOr<ImageHeader> ReadImageHeader(std::string_view b) {
  if (b.empty()) return absl::InvalidArgumentError("empty image");
  if (b.size() >= 3 && static_cast<uint8_t>(b[0]) == 0xFF && static_cast<uint8_t>(b[1]) == 0xD8) return Jpeg(b);
  if (StartsWith(b, "\x89PNG\r\n\x1a\n")) return Png(b);
  if (StartsWith(b, "BM")) return Bmp(b);
  if (b.size() >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return Pnm(b);
  if (b.size() >= 12 && StartsWith(b, "RIFF") && b.substr(8, 4) == "WEBP") return Webp(b);
  return absl::InvalidArgumentError("not an image in a supported format (JPEG, PNG, BMP, PNM or WebP)");
}

}  // namespace veriface
