#pragma once
// The image list the performance benchmarks share (bench/run_all.sh writes it): one path per line.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface::bench {

// The bytes of every file named in `list_path` (blank lines skipped), in order. NOT_FOUND when the list
// cannot be read, the file's own error when an image cannot, INVALID_ARGUMENT with fewer than two images
// (a Verify needs a pair).
absl::StatusOr<std::vector<std::string>> ReadImageList(const std::string& list_path);

}  // namespace veriface::bench
