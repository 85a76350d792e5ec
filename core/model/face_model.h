#pragma once
// A loaded model bundle: detector, backbone and head on one device, and the operations the service,
// the evaluator and the trainer share (detect, align, embed).

#include <torch/torch.h>

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/align/aligner.h"
#include "core/detect/mtcnn.h"
#include "core/embed/embedder.h"
#include "core/model/model_spec.h"

namespace veriface {

class FaceModel {
 public:
  // Reads `bundle_dir`/model.json, builds the networks it names and loads their weights onto `device`.
  static absl::StatusOr<std::shared_ptr<const FaceModel>> Load(const std::string& bundle_dir, torch::Device device);

  // Writes the networks' weights and model.json into `bundle_dir` (created if needed), after setting
  // spec.model_id from their content. Returns the spec as written.
  static absl::StatusOr<ModelSpec> Save(const std::string& bundle_dir, ModelSpec spec, const MtcnnNets& detector,
                                        const std::shared_ptr<Backbone>& backbone, const std::shared_ptr<Head>& head);

  const ModelSpec& spec() const { return spec_; }
  const std::string& model_id() const { return spec_.model_id; }
  const std::string& bundle_dir() const { return bundle_dir_; }
  torch::Device device() const { return device_; }
  const MtcnnDetector& detector() const { return *detector_; }
  const Embedder& embedder() const { return *embedder_; }
  int chip_size() const { return static_cast<int>(embedder_->input_size()); }

  absl::StatusOr<std::vector<FaceDetection>> Detect(const cv::Mat& rgb, const DetectorOptions& options) const {
    return detector_->Detect(rgb, options);
  }
  cv::Mat Align(const cv::Mat& rgb, const FaceDetection& face) const {
    return AlignFace(rgb, face.landmarks, chip_size()).chip;
  }
  // Unit-length embeddings [N, embedding_dim] (CPU) of aligned chips, with the bundle's test-time flip.
  torch::Tensor Embed(const std::vector<cv::Mat>& chips) const { return embedder_->Embed(chips); }

 private:
  FaceModel(ModelSpec spec, std::string bundle_dir, torch::Device device, std::unique_ptr<MtcnnDetector> detector,
            std::unique_ptr<Embedder> embedder);

  ModelSpec spec_;
  std::string bundle_dir_;
  torch::Device device_;
  std::unique_ptr<MtcnnDetector> detector_;
  std::unique_ptr<Embedder> embedder_;
};

// A stable digest of a module's architecture name and every parameter and buffer (names and values).
std::string ModuleContentHash(const std::string& arch, const torch::nn::Module& module);

}  // namespace veriface
