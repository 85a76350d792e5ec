#include "core/detect/face.h"

#include <algorithm>
#include <cmath>

namespace veriface {

int SelectFace(const std::vector<FaceDetection>& faces, FaceSelection selection, int image_width, int image_height) {
  int best = -1;
  double best_key = 0;
  for (int i = 0; i < static_cast<int>(faces.size()); ++i) {
    const FaceDetection& f = faces[static_cast<size_t>(i)];
    double key = 0;  // larger is better
    switch (selection) {
      case FaceSelection::kLargest: {
        // The part inside the image: MTCNN's squared boxes can run well past the edge for a face cut
        // by it, which must not make a bystander at the border look bigger than the subject.
        const double w = std::min<double>(f.box.x2, image_width) - std::max(f.box.x1, 0.0);
        const double h = std::min<double>(f.box.y2, image_height) - std::max(f.box.y1, 0.0);
        key = std::max(w, 0.0) * std::max(h, 0.0);
        break;
      }
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
