#pragma once
// FaceService's options: what a request may ask for, and the threshold of last resort. A header of plain
// values with no dependencies, so that the server's configuration holds these structs themselves and their
// defaults are written once, here.

#include <cstdint>

#include "core/gallery/follow_options.h"

namespace veriface {

// What a request may ask for. The defaults are the server's: config/veriface.yaml
// documents each under limits.* and model.fallback_threshold.
struct ServiceLimits {
  int64_t max_image_bytes = 16LL << 20;
  int64_t max_image_pixels = 36'000'000;
  int max_faces_per_image = 32;
  int max_images_per_enroll = 64;
  int max_top_k = 100;
  int max_page_size = 1000;
  int min_face_size_floor = 12;  // requests may not ask for smaller faces than this
};

struct FaceServiceOptions {
  ServiceLimits limits;
  // Used only when the bundle has no calibrated threshold for its default operating point.
  double fallback_threshold = 0.9125;
  // How the gallery follows a store that other replicas share.
  FollowOptions follow;
};

}  // namespace veriface
