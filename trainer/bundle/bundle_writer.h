#pragma once
// Writing model bundles (model.json plus LibTorch weight archives), for the offline tools that make them:
// veriface-import and veriface-train. The server only reads bundles (FaceModel::Load), so none of this is
// linked into it.

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/detect/mtcnn.h"
#include "core/embed/backbone.h"
#include "core/embed/head.h"
#include "core/model/model_spec.h"

namespace veriface {

// Writes the networks' weights and model.json into `bundle_dir` (created if needed), after filling in the
// spec's architecture fields and setting spec.model_id from the networks' content. `backbones`: one, or a
// fusion's members in order (the head takes their features side by side). Returns the spec as written;
// FaceModel::Load reads it back.
absl::StatusOr<ModelSpec> SaveBundle(const std::string& bundle_dir, ModelSpec spec, const MtcnnNets& detector,
                                     const std::vector<std::shared_ptr<Backbone>>& backbones,
                                     const std::shared_ptr<Head>& head);

// A stable digest of a module's architecture name and every parameter and buffer (names and values).
std::string ModuleContentHash(const std::string& arch, const torch::nn::Module& module);

}  // namespace veriface
