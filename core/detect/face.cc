#include "core/detect/face.h"

#include <cmath>

namespace veriface {

int SelectFace(const std::vector<FaceDetection>& faces, FaceSelection selection, int image_width, int image_height) {
  int best = -1;
  double best_key = 0;
  for (int i = 0; i < static_cast<int>(faces.size()); ++i) {
    const FaceDetection& f = faces[static_cast<size_t>(i)];
    double key = 0;  // larger is better
    switch (selection) {
      case FaceSelection::kLargest:
        key = f.box.area();
        break;
      case FaceSelection::kHighestScore:
        key = f.score;
        break;
      case FaceSelection::kCentral: {
        const cv::Point2d c = f.box.center();
        key = -std::hypot(c.x - image_width / 2.0, c.y - image_height / 2.0);
        break;
      }
    }
    if (best < 0 || key > best_key) {
      best = i;
      best_key = key;
    }
  }
  return best;
}

}  // namespace veriface
