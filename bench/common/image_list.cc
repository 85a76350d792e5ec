#include "bench/common/image_list.h"

#include <fstream>

#include "core/common/file_util.h"
#include "core/common/status_macros.h"

namespace veriface::bench {

absl::StatusOr<std::vector<std::string>> ReadImageList(const std::string& list_path) {
  std::ifstream in(list_path);
  if (!in) return absl::NotFoundError("cannot read the image list " + list_path);
  std::vector<std::string> images;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    VF_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(line));
    images.push_back(std::move(bytes));
  }
  if (images.size() < 2) return absl::InvalidArgumentError("the image list needs at least two images");
  return images;
}

}  // namespace veriface::bench
