#pragma once
// The narrow interface between the service's request logic and the networks: find faces in decoded
// images, embed chosen faces. BatchedEngine (batched_engine.h) runs a model bundle behind dynamic
// batchers; tests put a small fake behind it to exercise FaceService in milliseconds.
//
// No LibTorch here: the service and everything that includes it compile in a fraction of the time.

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/detect/detector.h"
#include "core/detect/face.h"
#include "core/model/model_spec.h"
#include "core/serving/call_budget.h"

namespace veriface {

// One decoded image to search, with the detector settings its request asked for.
struct DetectRequest {
  cv::Mat rgb;  // CV_8UC3, RGB
  DetectorOptions options;
};

// One detected face to embed, and the image it was found in (which must outlive the call).
struct FaceToEmbed {
  const cv::Mat* rgb = nullptr;
  FaceDetection face;
};

using Embedding = std::vector<float>;

class FaceEngine {
 public:
  virtual ~FaceEngine() = default;

  // The bundle being served: model id, embedding size, thresholds, detector defaults.
  virtual const ModelSpec& spec() const = 0;
  virtual std::string device() const = 0;  // "cpu", "cuda:0", ...

  // RESOURCE_EXHAUSTED when detection is saturated right now: lets a call give up before it spends time
  // and memory decoding images that would be refused anyway. Detect stays the real check.
  virtual absl::Status CheckCapacity() const = 0;

  // The faces in each image (same order), by descending score. The first failure is returned.
  virtual absl::StatusOr<std::vector<std::vector<FaceDetection>>> Detect(const std::vector<DetectRequest>& images,
                                                                         const CallBudget& budget) = 0;

  // Unit-length embeddings of the faces (same order), each from the bundle's test-time views.
  virtual absl::StatusOr<std::vector<Embedding>> Embed(const std::vector<FaceToEmbed>& faces,
                                                       const CallBudget& budget) = 0;

  // Finishes the queued work; later calls get UNAVAILABLE.
  virtual void Shutdown() = 0;
};

}  // namespace veriface
