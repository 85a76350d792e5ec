#include "tests/serving/fake_engine.h"

#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace veriface::testing {

std::string FaceImage(const std::vector<Square>& squares, int width, int height) {
  cv::Mat rgb(height, width, CV_8UC3, cv::Scalar::all(0));
  for (const Square& s : squares) cv::rectangle(rgb, cv::Rect(s.x, s.y, kSquare, kSquare), s.rgb, cv::FILLED);
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> png;
  cv::imencode(".png", bgr, png);
  return std::string(png.begin(), png.end());
}

FakeEngine::FakeEngine(ModelSpec spec) : spec_(std::move(spec)) { spec_.embedding_dim = kFakeDim; }

void FakeEngine::HoldDetections() {
  std::lock_guard<std::mutex> lock(hold_mutex_);
  hold_ = true;
}

void FakeEngine::ReleaseDetections() {
  {
    std::lock_guard<std::mutex> lock(hold_mutex_);
    hold_ = false;
  }
  released_.notify_all();
}

absl::StatusOr<std::vector<std::vector<FaceDetection>>> FakeEngine::Detect(const std::vector<DetectRequest>& images,
                                                                           const CallBudget&) {
  if (shut_down_) return absl::UnavailableError("the fake engine is shut down");
  {
    std::unique_lock<std::mutex> lock(hold_mutex_);
    ++detections_held_;
    released_.wait(lock, [&] { return !hold_; });
    --detections_held_;
  }
  std::vector<std::vector<FaceDetection>> out;
  for (const DetectRequest& image : images) {
    ++images_detected_;
    last_min_face_size_ = image.options.min_face_size;
    // A face is a square's top-left corner: a lit pixel with dark pixels (or the border) above and left.
    std::vector<FaceDetection> faces;
    const cv::Mat& m = image.rgb;
    for (int y = 0; y < m.rows; ++y) {
      for (int x = 0; x < m.cols; ++x) {
        const auto lit = [&](int xx, int yy) {
          if (xx < 0 || yy < 0) return false;
          const cv::Vec3b p = m.at<cv::Vec3b>(yy, xx);
          return p[0] + p[1] + p[2] > 0;
        };
        if (!lit(x, y) || lit(x - 1, y) || lit(x, y - 1)) continue;
        FaceDetection face;
        face.box = FaceBox{double(x), double(y), double(x + kSquare), double(y + kSquare)};
        // Brighter squares score higher, so that HIGHEST_SCORE has something to choose by.
        const cv::Vec3b p = m.at<cv::Vec3b>(y, x);
        face.score = static_cast<float>(p[0] + p[1] + p[2]) / 765.0F;
        for (int k = 0; k < 5; ++k) face.landmarks[static_cast<size_t>(k)] = {x + 8.0 * k, y + 20.0};
        faces.push_back(face);
      }
    }
    std::stable_sort(faces.begin(), faces.end(),
                     [](const FaceDetection& a, const FaceDetection& b) { return a.score > b.score; });
    out.push_back(std::move(faces));
  }
  return out;
}

absl::StatusOr<std::vector<Embedding>> FakeEngine::Embed(const std::vector<FaceToEmbed>& faces, const CallBudget&) {
  if (shut_down_) return absl::UnavailableError("the fake engine is shut down");
  std::vector<Embedding> out;
  for (const FaceToEmbed& f : faces) {
    ++faces_embedded_;
    const cv::Vec3b p = f.rgb->at<cv::Vec3b>(static_cast<int>(f.face.box.y1), static_cast<int>(f.face.box.x1));
    const float norm = std::sqrt(float(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]));
    out.push_back({p[0] / norm, p[1] / norm, p[2] / norm});
  }
  return out;
}

}  // namespace veriface::testing
