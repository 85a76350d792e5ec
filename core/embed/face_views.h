#pragma once
// The chips one face is embedded from: its test-time crops, each a square of the backbone's input size.
// The embedder adds each crop's mirror when the bundle flips; the features of all of them are averaged
// (core/embed/view_reduction.h).

#include <opencv2/core.hpp>
#include <utility>
#include <vector>

namespace veriface {

struct FaceViews {
  FaceViews() = default;
  // One plain chip is a face with one view; implicit so that `Embed({chip})` reads as it means.
  FaceViews(cv::Mat chip) : crops{std::move(chip)} {}  // NOLINT(google-explicit-constructor)
  explicit FaceViews(std::vector<cv::Mat> chips) : crops(std::move(chips)) {}

  std::vector<cv::Mat> crops;  // CV_8UC3 RGB, all the same square size
};

}  // namespace veriface
