#pragma once
// A FaceEngine for FaceService's in-process tests: no networks, answers in microseconds, and easy to
// reason about. Its "faces" are the solid-coloured 40x40 squares drawn by FaceImage(): a square is found
// wherever one is drawn, and its embedding is its colour as a unit vector, so two squares of one colour are
// one person (similarity 1) and squares of different colours are different people.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "core/serving/face_engine.h"

namespace veriface::testing {

inline constexpr int kFakeDim = 3;
inline constexpr int kSquare = 40;

struct Square {
  cv::Scalar rgb;  // the face's colour, which is who it is
  int x = 0, y = 0;
};

// A PNG of `width` x `height` black pixels with the squares drawn on it.
std::string FaceImage(const std::vector<Square>& squares, int width = 200, int height = 120);

class FakeEngine final : public FaceEngine {
 public:
  // `spec` gives the model id, thresholds and detector defaults; embedding_dim is set to kFakeDim.
  explicit FakeEngine(ModelSpec spec);

  const ModelSpec& spec() const override { return spec_; }
  std::string device() const override { return "fake"; }
  absl::Status CheckCapacity() const override { return capacity_; }
  absl::StatusOr<std::vector<std::vector<FaceDetection>>> Detect(const std::vector<DetectRequest>& images,
                                                                 const CallBudget& budget) override;
  absl::StatusOr<std::vector<Embedding>> Embed(const std::vector<FaceToEmbed>& faces,
                                               const CallBudget& budget) override;
  void Shutdown() override { shut_down_ = true; }

  // What the next CheckCapacity answers.
  void set_capacity(absl::Status s) { capacity_ = std::move(s); }
  int images_detected() const { return images_detected_; }
  int faces_embedded() const { return faces_embedded_; }
  // The min_face_size of the last image searched.
  int last_min_face_size() const { return last_min_face_size_; }
  bool shut_down() const { return shut_down_; }
  // While held, Detect waits (so that a test can keep a call in flight) until released.
  void HoldDetections();
  void ReleaseDetections();
  // Calls waiting in Detect because of HoldDetections.
  int detections_held() const { return detections_held_; }

 private:
  ModelSpec spec_;
  absl::Status capacity_;
  std::atomic<int> images_detected_{0};
  std::atomic<int> faces_embedded_{0};
  std::atomic<int> last_min_face_size_{0};
  std::atomic<bool> shut_down_{false};
  std::mutex hold_mutex_;
  std::condition_variable released_;
  bool hold_ = false;
  std::atomic<int> detections_held_{0};
};

}  // namespace veriface::testing
