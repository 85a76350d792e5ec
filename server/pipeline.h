#pragma once
// The model stages behind the RPCs, each with its own dynamic batcher so that work from many calls is
// computed together: detection on decoded images, embedding on aligned chips. Everything here waits
// for its results within the caller's deadline and gives up as soon as the call is cancelled.
//
// No LibTorch in this header: the service includes it, and it compiles in a fraction of the time.

#include <chrono>
#include <functional>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/detect/detector.h"
#include "core/model/model_spec.h"
#include "server/config.h"

namespace veriface {
class BatchObserver;
class FaceModel;
}  // namespace veriface

namespace veriface::server {

// The budget of one call: when it must be done by, and how to tell that its caller has gone.
struct CallBudget {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::function<bool()> cancelled;  // may be empty
};

// One image for the detection stage, with the detector settings its request asked for.
struct DetectRequest {
  cv::Mat rgb;  // CV_8UC3, RGB
  DetectorOptions options;
};

// The stages' names, as their batchers report them (the `stage` label of the metrics).
inline constexpr char kDetectStage[] = "detect";
inline constexpr char kEmbedStage[] = "embed";

// LibTorch's version, e.g. "1.13.0".
std::string TorchVersion();

class Pipeline {
 public:
  // Loads the model bundle of `config` onto its device, sets LibTorch's threads and starts the batchers'
  // workers, which report to `observer` (may be null).
  static absl::StatusOr<std::unique_ptr<Pipeline>> Load(const ServerConfig& config,
                                                        std::shared_ptr<BatchObserver> observer);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Faces in each image (same order), all submitted before any is awaited so that they share batches.
  // The first failure is returned, e.g. RESOURCE_EXHAUSTED when the detection queue is full.
  absl::StatusOr<std::vector<std::vector<FaceDetection>>> Detect(const std::vector<DetectRequest>& images,
                                                                 const CallBudget& budget);

  // Unit-length embeddings of the given faces, aligned here: faces[i] is a face in *images[i].
  absl::StatusOr<std::vector<std::vector<float>>> Embed(const std::vector<const cv::Mat*>& images,
                                                        const std::vector<FaceDetection>& faces,
                                                        const CallBudget& budget);

  // RESOURCE_EXHAUSTED when the detection queue is full right now: lets a call give up before it spends
  // time and memory decoding images that would be refused anyway. Submitting stays the real check.
  absl::Status CheckCapacity() const;

  // Finishes the queued work and stops the workers; later calls get UNAVAILABLE.
  void Shutdown();

  const ModelSpec& spec() const;
  std::string device() const;  // "cpu", "cuda:0", ...

 private:
  struct Impl;
  Pipeline(std::shared_ptr<const FaceModel> model, std::unique_ptr<Impl> impl);

  std::shared_ptr<const FaceModel> model_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace veriface::server
