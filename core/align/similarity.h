#pragma once
// Least-squares 2-D similarity transform (rotation, uniform scale, translation; never a reflection).

#include <opencv2/core.hpp>
#include <vector>

namespace veriface {

// The 2x3 matrix M minimising sum |M * [src_i; 1] - dst_i|^2 over similarity transforms. Needs at least
// two distinct source points; otherwise returns the translation that maps the centroids.
cv::Matx23d FitSimilarity(const std::vector<cv::Point2d>& src, const std::vector<cv::Point2d>& dst);

}  // namespace veriface
