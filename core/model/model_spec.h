#pragma once
// model.json: everything needed to rebuild a model bundle's networks and to use them as intended
// (chip size, test-time flip, thresholds), plus where the weights came from and how well they did.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/detect/detector.h"

namespace veriface {

struct ComponentSpec {
  std::string arch;     // e.g. "mtcnn", "face-resnet", "identity"
  std::string weights;  // file in the bundle directory; empty when there are none
  nlohmann::json params = nlohmann::json::object();
};

struct ModelSpec {
  static constexpr int kFormatVersion = 1;

  std::string model_id;  // content hash of the architectures and weights; galleries record it
  std::string description;
  ComponentSpec detector;
  DetectorOptions detector_defaults;
  ComponentSpec backbone;
  // A fusion bundle's further networks, each aligning and embedding the face its own way; the head takes the
  // unit-length features of all of them, the first's first (core/embed/view_reduction.h). Empty for a bundle of
  // one network, whose model.json then has no "fused_backbones" key (and reads as it always did).
  std::vector<ComponentSpec> fused_backbones;
  ComponentSpec head;
  int64_t embedding_dim = 128;
  bool flip_average = true;  // test-time: average each chip with its mirror image
  // Test-time crops of each face whose features are averaged: a ParseTta spec without "flip" (see
  // core/model/test_time.h), e.g. "shift=3+faceapi"; "none" is the template chip alone. A bundle written
  // before this setting existed reads as "none", so its calibrated thresholds keep their meaning.
  std::string crops = "none";
  // Cosine-similarity thresholds by operating point ("best_accuracy", "far_1e-2", "far_1e-3", ...).
  std::map<std::string, double> thresholds;
  std::string default_operating_point = "best_accuracy";
  nlohmann::json calibration = nlohmann::json::object();  // how the thresholds were chosen
  nlohmann::json provenance = nlohmann::json::object();   // source weights, training data
  nlohmann::json accuracy = nlohmann::json::object();     // measured results, with their protocol

  // The whole test-time setting as one ParseTta spec, e.g. "flip+shift=3+faceapi".
  std::string TestTimeSpec() const;

  // The threshold of the default operating point; FAILED_PRECONDITION when the bundle has none.
  absl::StatusOr<double> DefaultThreshold() const;

  nlohmann::json ToJson() const;
  static absl::StatusOr<ModelSpec> FromJson(const nlohmann::json& j);
};

absl::StatusOr<ModelSpec> ReadModelSpec(const std::string& bundle_dir);
absl::Status WriteModelSpec(const std::string& bundle_dir, const ModelSpec& spec);

}  // namespace veriface
