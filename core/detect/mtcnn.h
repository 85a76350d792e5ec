#pragma once
// MTCNN face detection: P-Net over an image pyramid, then R-Net and O-Net on the surviving candidates.
// Follows face-api.js's cascade with the fixes the reference implementation makes: RGB input,
// area-averaged (anti-aliased) pyramid and patches, zero-filled patches at the image border, and
// landmarks placed in O-Net's input box.

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/detect/box_ops.h"
#include "core/detect/detector.h"
#include "core/detect/mtcnn_nets.h"

namespace veriface {

// Internals exposed for tests and benchmarks.
namespace mtcnn {

// Pyramid scales, largest first: 12/min_face * factor^k while the short side stays >= 12 px, keeping
// those whose resized short side exceeds 12 px, at most `max_scales` of them.
std::vector<double> PyramidScales(int height, int width, const DetectorOptions& options);

// One pyramid level as P-Net input: `rgb_float` (CV_32FC3) resized to floor(W*s) x floor(H*s) with
// INTER_AREA, normalised and transposed to [1, 3, W', H'].
torch::Tensor PyramidLevelTensor(const cv::Mat& rgb_float, double scale);

// Patches of `size` x `size` for boxes in face-api convention: each box copied into a zero canvas of
// its full size, then resized with INTER_AREA. Returns uint8 [N, size, size, 3] (RGB, row-major).
torch::Tensor ExtractPatches(const cv::Mat& rgb, const std::vector<Box>& boxes, int size);

// uint8 [N, H, W, 3] or float [N, H, W, 3] -> normalised, transposed float [N, 3, W, H].
torch::Tensor ToNetInput(const torch::Tensor& nhwc);

struct Candidates {
  std::vector<Box> boxes;  // face-api convention
  std::vector<float> scores;
};

}  // namespace mtcnn

struct MtcnnNets {
  PNet pnet;
  RNet rnet;
  ONet onet;
};

class MtcnnDetector final : public FaceDetector {
 public:
  MtcnnDetector(MtcnnNets nets, torch::Device device);

  absl::StatusOr<std::vector<FaceDetection>> Detect(const cv::Mat& rgb, const DetectorOptions& options) const override;

  // The three stages, for tests and per-stage timing.
  mtcnn::Candidates Stage1(const cv::Mat& rgb, const DetectorOptions& options) const;
  mtcnn::Candidates Stage2(const cv::Mat& rgb, const mtcnn::Candidates& in, const DetectorOptions& options) const;
  std::vector<FaceDetection> Stage3(const cv::Mat& rgb, const mtcnn::Candidates& in,
                                    const DetectorOptions& options) const;

  const MtcnnNets& nets() const { return nets_; }

 private:
  // Inference only (eval mode, no autograd), so forward() leaves the networks unchanged; LibTorch's
  // forward() is simply not const.
  mutable MtcnnNets nets_;
  torch::Device device_;
};

}  // namespace veriface
