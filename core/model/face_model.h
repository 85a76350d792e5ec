#pragma once
// A loaded model bundle: detector, backbone (or a fusion's backbones) and head on one device, and the
// operations the service, the evaluator and the trainer share (detect, align, embed).

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
#include "core/model/test_time.h"

namespace veriface {

class FaceModel {
 public:
  // Reads `bundle_dir`/model.json, builds the networks it names and loads their weights onto `device`.
  static absl::StatusOr<std::shared_ptr<const FaceModel>> Load(const std::string& bundle_dir, torch::Device device);

  const ModelSpec& spec() const { return spec_; }
  const std::string& model_id() const { return spec_.model_id; }
  const std::string& bundle_dir() const { return bundle_dir_; }
  torch::Device device() const { return device_; }
  const MtcnnDetector& detector() const { return *detector_; }
  const Embedder& embedder() const { return *embedder_; }
  // How many backbones embed each face: 1, or a fusion's members.
  size_t members() const { return embedder_->backbones().size(); }
  // A backbone's chip side and the face template its chips are aligned to.
  int chip_size(size_t member = 0) const { return static_cast<int>(embedder_->input_size(member)); }
  ChipTemplate chip_template(size_t member = 0) const { return embedder_->backbones()[member]->chip_template(); }

  absl::StatusOr<std::vector<FaceDetection>> Detect(const cv::Mat& rgb, const DetectorOptions& options) const {
    return detector_->Detect(rgb, options);
  }
  // The plain template chip of the first backbone (chip_size() square): what a person looks at.
  cv::Mat Align(const cv::Mat& rgb, const FaceDetection& face) const {
    return AlignFace(rgb, face.landmarks, chip_size(), chip_template()).chip;
  }
  // What Embed needs for one face under the bundle's test-time setting: its crops, each chip_size() square
  // (with crops "none", the template chip alone, as Align cuts it); in a fusion, every member's crops in
  // turn, each cut for that member. Use this, not Align, for anything compared against the thresholds.
  FaceViews Cut(const cv::Mat& rgb, const FaceDetection& face) const;
  // Unit-length embeddings [N, embedding_dim] (CPU) of faces from Cut (or plain aligned chips), with the
  // bundle's test-time flip.
  absl::StatusOr<torch::Tensor> Embed(const std::vector<FaceViews>& faces) const { return embedder_->Embed(faces); }
  // The same, one vector per face, in order.
  absl::StatusOr<std::vector<std::vector<float>>> EmbedRows(const std::vector<FaceViews>& faces) const;
  // The bundle's test-time setting, parsed: test_time().views.size() chips go through the backbone per face.
  const TtaConfig& test_time() const { return test_time_; }

 private:
  FaceModel(ModelSpec spec, std::string bundle_dir, torch::Device device, std::unique_ptr<MtcnnDetector> detector,
            std::unique_ptr<Embedder> embedder, TtaConfig test_time);

  ModelSpec spec_;
  std::string bundle_dir_;
  torch::Device device_;
  std::unique_ptr<MtcnnDetector> detector_;
  std::unique_ptr<Embedder> embedder_;
  TtaConfig test_time_;
};

// The three MTCNN networks under one parent module, so that they travel as one weights file (the bundle's
// detector.pt): Load reads that file into it, and the offline tools' SaveBundle writes it from it.
std::shared_ptr<torch::nn::Module> MtcnnParent(const MtcnnNets& nets);

}  // namespace veriface
