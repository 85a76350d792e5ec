#pragma once
// Access to the reference goldens (../shared/reference/goldens, see its README): the JSON records and
// the raw little-endian binary tensors they point to, plus the two derived test images.

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>

namespace veriface::testing {

nlohmann::json LoadGoldenJson(const std::string& relative_path);

// A binary golden described by {file, dtype, shape} inside `folder` (relative to the goldens dir).
torch::Tensor LoadGoldenTensor(const std::string& folder, const nlohmann::json& entry);

// The RGB input image of a lfw_pipeline.json record: an LFW file, or the derived `hconcat3` (three
// images side by side) and `upscale3` (every pixel repeated 3x3).
cv::Mat GoldenImage(const nlohmann::json& record);

}  // namespace veriface::testing
