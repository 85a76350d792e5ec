#pragma once
// Random training-time changes to an aligned face chip that keep who it is: a mirror image, a small
// shift / scale / rotation (how much the detector's landmarks wobble between photos), and colour
// jitter (brightness, contrast, saturation), in the spirit of the standard ImageNet recipe.

#include <opencv2/core.hpp>
#include <random>

namespace veriface {

struct AugmentOptions {
  bool enabled = true;
  double flip_probability = 0.5;
  double max_shift = 0.04;  // fraction of the chip side, each axis
  double max_scale = 0.08;  // zoom factor drawn from [1 - s, 1 + s]
  double max_rotation_deg = 6.0;
  double brightness = 0.2;  // multiply by a factor in [1 - b, 1 + b]
  double contrast = 0.2;    // blend with the mean grey level by a factor in [1 - c, 1 + c]
  double saturation = 0.2;  // blend with the grey image by a factor in [1 - s, 1 + s]
};

// A changed copy of `chip` (CV_8UC3, any size; the output has the same size). Every draw comes from
// `rng`, so the same generator state gives the same picture.
cv::Mat AugmentChip(const cv::Mat& chip, const AugmentOptions& options, std::mt19937_64& rng);

}  // namespace veriface
