#pragma once
// The levels of face quality and the bounds between them: plain values with no dependencies, so that the
// service's options and the server's configuration hold them directly (face_quality.h measures and rates).
//
// The bounds (QualityPolicy's defaults) were chosen by how much each degradation costs this project's
// recogniser, not by how LFW's photos happen to be distributed: bench/quality/README.md has the sweep on
// LFW View 1 that set them and the check on View 2.

namespace veriface {

// Ordered: a higher value is better. kUnspecified is "no preference" where a request asks for a minimum.
enum class QualityLevel { kUnspecified = 0, kLow = 1, kMedium = 2, kHigh = 3 };

// A measure is kHigh at or beyond its `medium` bound, kMedium between the bounds and kLow beyond `low`.
// "Beyond" is below for size, sharpness, brightness (dark) and score, and above for pose and brightness
// (bright).
struct QualityPolicy {
  // Size, sharpness and exposure: where the recogniser's pair error rate on LFW View 1 rises by 1 point
  // (medium) and by 5 points (low) as the photo is shrunk, blurred, darkened or overexposed
  // (bench/results/quality/view1_sweep.md).
  double interocular_medium_px = 10.5;
  double interocular_low_px = 7.6;
  double sharpness_medium = 0.71;
  double sharpness_low = 0.46;
  double dark_medium = 14;
  double dark_low = 9.8;
  double bright_medium = 216;
  double bright_low = 243;
  // Pose cannot be synthesised from a photo: the largest of |yaw| and |pitch|, beyond the spread of the
  // estimate over View 1's portraits (5th to 95th percentile: yaw -32..28, pitch -25..23 degrees;
  // bench/results/quality/view1_pose.json), so that the estimator's own noise on near-frontal faces is not
  // called a pose. Roll is not rated: alignment undoes it.
  double pose_medium_deg = 35;
  double pose_low_deg = 55;
  // Just above MTCNN's own output threshold (0.7): almost every real face scores above 0.99.
  double score_medium = 0.9;
  double score_low = 0.8;
};

}  // namespace veriface
