#include "core/gallery/validation.h"

#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace veriface {
namespace {

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are rejected).
size_t Utf8SequenceLength(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

}  // namespace

std::string Quote(const std::string& s) {
  constexpr size_t kMax = 64;
  std::string shown = absl::CHexEscape(s.size() > kMax ? s.substr(0, kMax) : s);
  return absl::StrCat("\"", shown, s.size() > kMax ? "...\"" : "\"");
}

absl::Status ValidateText(const std::string& what, const std::string& s, bool allow_whitespace_controls) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      if (!(allow_whitespace_controls && (c == '\t' || c == '\n' || c == '\r'))) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s %s contains control character 0x%02x at byte %d", what, Quote(s), c, i));
      }
    }
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrFormat("%s %s is not valid UTF-8 at byte %d", what, Quote(s), i));
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::Status ValidateId(const std::string& what, const std::string& id, int64_t max_length) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (static_cast<int64_t>(id.size()) > max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(id), " is ", id.size(), " bytes long; the limit is ", max_length));
  }
  return ValidateText(what, id, /*allow_whitespace_controls=*/false);
}

absl::Status ValidateGalleryName(const std::string& what, const std::string& name, int64_t max_length) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (static_cast<int64_t>(name.size()) > max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quote(name), " is ", name.size(), " bytes long; the limit is ", max_length));
  }
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(alnum(c) || (i > 0 && (c == '.' || c == '_' || c == '-')))) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", Quote(name),
          " may hold only ASCII letters, digits, '.', '_' and '-', and must start with a letter or digit"));
    }
  }
  return absl::OkStatus();
}

int64_t MetadataBytes(const std::map<std::string, std::string>& metadata) {
  int64_t bytes = 0;
  for (const auto& [key, value] : metadata) bytes += static_cast<int64_t>(key.size() + value.size());
  return bytes;
}

absl::StatusOr<std::vector<float>> NormalizedEmbedding(const std::vector<float>& embedding, int64_t dim,
                                                       float tolerance, const std::string& what,
                                                       const std::string& model_id) {
  if (static_cast<int64_t>(embedding.size()) != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", embedding.size(), " values; model '", model_id, "' makes ", dim, "-D embeddings"));
  }
  double sum = 0;
  for (size_t i = 0; i < embedding.size(); ++i) {
    if (!std::isfinite(embedding[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has a non-finite value (", embedding[i], ") at index ", i));
    }
    sum += static_cast<double>(embedding[i]) * embedding[i];
  }
  const double norm = std::sqrt(sum);
  if (std::abs(norm - 1.0) > tolerance) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s has L2 norm %.6g; embeddings must be unit length (within %g)", what, norm, tolerance));
  }
  std::vector<float> out(embedding.size());
  for (size_t i = 0; i < embedding.size(); ++i) out[i] = static_cast<float>(embedding[i] / norm);
  return out;
}

}  // namespace veriface
