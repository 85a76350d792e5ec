#pragma once
// Checks of what callers put into a gallery (ids, names, metadata, embeddings), shared by the gallery and
// its collections so that every path refuses the same things with the same words.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface {

// Printable form of a user-supplied string for error messages (bounded, control bytes escaped, quoted).
std::string Quote(const std::string& s);

// INVALID_ARGUMENT unless `s` is valid UTF-8 without control characters (tab, CR and newline allowed
// when `allow_whitespace_controls`); the message names it `what`.
absl::Status ValidateText(const std::string& what, const std::string& s, bool allow_whitespace_controls);

// Non-empty, at most `max_length` bytes, text without control characters.
absl::Status ValidateId(const std::string& what, const std::string& id, int64_t max_length);

// A gallery name: 1 to `max_length` bytes of ASCII letters, digits, '.', '_' and '-', starting with a
// letter or digit. Narrower than an identity id because operators type it in configs, URLs and logs.
absl::Status ValidateGalleryName(const std::string& what, const std::string& name, int64_t max_length);

int64_t MetadataBytes(const std::map<std::string, std::string>& metadata);

// `embedding` scaled to exactly unit length; INVALID_ARGUMENT (naming it `what`) unless it has `dim`
// finite values and an L2 norm within `tolerance` of 1.
absl::StatusOr<std::vector<float>> NormalizedEmbedding(const std::vector<float>& embedding, int64_t dim,
                                                       float tolerance, const std::string& what,
                                                       const std::string& model_id);

}  // namespace veriface
