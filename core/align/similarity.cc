#include "core/align/similarity.h"

namespace veriface {

// With centred points s_i, d_i the optimum is M = [[a, -b], [b, a]] with
// a = sum(s_i . d_i) / sum |s_i|^2 and b = sum(s_i x d_i) / sum |s_i|^2: linear least squares in (a, b),
// the same optimum as Umeyama's SVD method restricted to proper rotations, without the SVD.
cv::Matx23d FitSimilarity(const std::vector<cv::Point2d>& src, const std::vector<cv::Point2d>& dst) {
  const size_t n = std::min(src.size(), dst.size());
  cv::Point2d ms(0, 0), md(0, 0);
  for (size_t i = 0; i < n; ++i) {
    ms += src[i];
    md += dst[i];
  }
  if (n > 0) {
    ms /= static_cast<double>(n);
    md /= static_cast<double>(n);
  }
  double dot = 0, cross = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    const cv::Point2d s = src[i] - ms;
    const cv::Point2d d = dst[i] - md;
    dot += s.x * d.x + s.y * d.y;
    cross += s.x * d.y - s.y * d.x;
    norm += s.x * s.x + s.y * s.y;
  }
  const double a = norm > 0 ? dot / norm : 1.0;
  const double b = norm > 0 ? cross / norm : 0.0;
  return {a, -b, md.x - (a * ms.x - b * ms.y),  //
          b, a,  md.y - (b * ms.x + a * ms.y)};
}

}  // namespace veriface
