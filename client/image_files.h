#pragma once
// Finding image files on disk: single files, folders of one person's photos, and folders in LFW layout
// (one subfolder per person).

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface::client {

// By extension: .jpg .jpeg .png .bmp .pgm .ppm .pnm .webp (any case).
bool IsImageFile(const std::string& path);

absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

struct EnrollItem {
  std::string identity_id;
  std::string path;
};

// What `veriface enroll` sends, in order. With `identity_id` set, every image under `paths` goes to it.
// Otherwise a file goes to the identity named after its folder, a folder of images is one identity named
// after the folder, and a folder of folders (LFW layout) is one identity per subfolder. At most
// `max_per_identity` images per identity (0: all), the first in name order.
absl::StatusOr<std::vector<EnrollItem>> PlanEnrollment(const std::vector<std::string>& paths,
                                                       const std::string& identity_id, int max_per_identity);

// Image files under `paths` (files as given, folders searched recursively), sorted, at most `limit`
// (0: all).
absl::StatusOr<std::vector<std::string>> CollectImages(const std::vector<std::string>& paths, size_t limit);

}  // namespace veriface::client
