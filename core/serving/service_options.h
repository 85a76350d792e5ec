#pragma once
// FaceService's options: what a request may ask for, and the threshold of last resort. A header of plain
// values with no dependencies, so that the server's configuration holds these structs themselves and their
// defaults are written once, here.

#include <cstdint>
#include <string>

#include "core/gallery/follow_options.h"
#include "core/quality/quality_policy.h"

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
  // Decoded pixels that all calls in flight may hold together (PixelBudget); 0: unbounded. 100 Mpixel is
  // about 300 MB of RGB, and several times that in the detector's pyramid: 50 photos of 1920x1080, or
  // two of the largest images admitted.
  int64_t max_inflight_pixels = 100'000'000;
  // Calls doing model work at once (those with an image to search: CallSlots); past it a call is refused
  // at once, with a retry hint, rather than queued behind work it would wait for past its deadline.
  // 0: unbounded. On a 2-core CPU Verify's goodput peaks at about 16 calls in flight (4 detection batches
  // of the default 4 images each); more only lengthen every call's wait. Raise it with the batches on
  // faster hardware.
  int max_concurrent_calls = 16;
  // A larger image is searched for faces on a copy scaled down to this many pixels (detection_scale.h),
  // and its faces cut from the full image; 0: always at full size. 4 Mpixel is about twice a 1920x1080
  // photo, so the largest admitted image costs about twice such a photo's detection, not 17 times.
  int64_t detect_max_pixels = 4'000'000;
};

// Which faces a request may use: config/veriface.yaml documents each under quality.*.
struct QualityOptions {
  QualityPolicy policy;
  // Enrolment refuses faces below this unless the request lowers it: a poor template hurts every later
  // comparison with the person, so the bar is higher than for a probe.
  QualityLevel enroll_min = QualityLevel::kMedium;
  // Verify's and Identify's image sides: every face by default (a probe is compared once).
  QualityLevel probe_min = QualityLevel::kLow;
};

// The threshold of one operating point taken from a gallery's own genuine and impostor pairs instead of
// the bundle's calibration (config thresholds.gallery_calibration.*). Off by default: a gallery must hold
// enough people for the estimate (see GalleryReport) before it can be trusted.
struct GalleryCalibrationOptions {
  bool enabled = false;
  std::string operating_point = "far_1e-3";  // a far_<rate> point: its FAR target is the rate
  std::string gallery = "default";
  int refresh_seconds = 600;  // the estimate is renewed at most this often, on the next call that uses it
};

struct FaceServiceOptions {
  ServiceLimits limits;
  // Used only when the bundle has no calibrated threshold for its default operating point.
  double fallback_threshold = 0.9125;
  // How the gallery follows a store that other replicas share.
  FollowOptions follow;
  QualityOptions quality;
  GalleryCalibrationOptions gallery_calibration;
  // Each template keeps its face (with a margin, as JPEG) and landmarks, so that another model can
  // re-embed the gallery (veriface-migrate). Off where face images must not be stored: templates then
  // hold only embeddings, and a new model needs their people re-enrolled.
  bool keep_face_crops = true;
};

}  // namespace veriface
