#include "trainer/training/augment.h"

#include <cmath>
#include <opencv2/imgproc.hpp>

namespace veriface {
namespace {

// Uniform in [lo, hi] from the raw generator: std::uniform_real_distribution's sequence is left to the
// standard library, and augmentations should be the same wherever the trainer is built.
double Uniform(std::mt19937_64& rng, double lo, double hi) {
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return lo + (hi - lo) * u;
}

}  // namespace

cv::Mat AugmentChip(const cv::Mat& chip, const AugmentOptions& o, std::mt19937_64& rng) {
  // Draw everything first so the number of draws does not depend on the picture.
  const bool flip = Uniform(rng, 0, 1) < o.flip_probability;
  const double dx = Uniform(rng, -o.max_shift, o.max_shift) * chip.cols;
  const double dy = Uniform(rng, -o.max_shift, o.max_shift) * chip.rows;
  const double scale = Uniform(rng, 1 - o.max_scale, 1 + o.max_scale);
  const double angle = Uniform(rng, -o.max_rotation_deg, o.max_rotation_deg);
  const double brightness = Uniform(rng, 1 - o.brightness, 1 + o.brightness);
  const double contrast = Uniform(rng, 1 - o.contrast, 1 + o.contrast);
  const double saturation = Uniform(rng, 1 - o.saturation, 1 + o.saturation);
  if (!o.enabled) return chip.clone();

  cv::Mat out;
  cv::Mat m = cv::getRotationMatrix2D(cv::Point2f((chip.cols - 1) / 2.0F, (chip.rows - 1) / 2.0F), angle, scale);
  m.at<double>(0, 2) += dx;
  m.at<double>(1, 2) += dy;
  // Replicated borders rather than black ones: a black band would be a cue the real chips rarely have.
  cv::warpAffine(chip, out, m, chip.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  if (flip) cv::flip(out, out, 1);

  cv::Mat f;
  out.convertTo(f, CV_32FC3, brightness);
  cv::Mat grey;
  cv::cvtColor(f, grey, cv::COLOR_RGB2GRAY);
  const double mean_grey = cv::mean(grey)[0];
  cv::Mat grey3;
  cv::cvtColor(grey, grey3, cv::COLOR_GRAY2RGB);
  // saturation: blend towards the grey image; contrast: towards the mean grey level.
  f = f * saturation + grey3 * (1 - saturation);
  f = f * contrast + cv::Scalar::all(mean_grey * (1 - contrast));
  f.convertTo(out, CV_8UC3);  // saturates to 0..255
  return out;
}

}  // namespace veriface
