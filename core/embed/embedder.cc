#include "core/embed/embedder.h"

#include "absl/strings/str_cat.h"
#include "core/common/guarded.h"
#include "core/common/status_macros.h"
#include "core/embed/view_reduction.h"

namespace veriface {

absl::StatusOr<torch::Tensor> ChipsToTensor(const std::vector<cv::Mat>& chips) {
  if (chips.empty()) return torch::empty({0, 3, 0, 0});
  const int h = chips[0].rows, w = chips[0].cols;
  for (size_t i = 0; i < chips.size(); ++i) {
    const cv::Mat& c = chips[i];
    if (c.type() != CV_8UC3 || c.rows != h || c.cols != w) {
      return absl::InvalidArgumentError(absl::StrCat("chip ", i, " is ", c.cols, "x", c.rows, " of type ", c.type(),
                                                     "; every chip must be CV_8UC3 of ", w, "x", h));
    }
  }
  return Guarded("packing chips into a tensor", [&]() -> absl::StatusOr<torch::Tensor> {
    auto batch = torch::empty({static_cast<int64_t>(chips.size()), h, w, 3}, torch::kUInt8);
    for (size_t i = 0; i < chips.size(); ++i) {
      cv::Mat dst(h, w, CV_8UC3, batch[static_cast<int64_t>(i)].data_ptr<uint8_t>());
      chips[i].copyTo(dst);
    }
    return batch.permute({0, 3, 1, 2}).to(torch::kFloat32).contiguous();
  });
}

Embedder::Embedder(std::shared_ptr<Backbone> backbone, std::shared_ptr<Head> head, torch::Device device,
                   EmbedderOptions options)
    : backbone_(std::move(backbone)), head_(std::move(head)), device_(device), options_(options) {
  backbone_->eval();
  head_->eval();
  backbone_->to(device_);
  head_->to(device_);
}

torch::Tensor Embedder::ForwardInPasses(const torch::Tensor& x) const {
  const int64_t pass = options_.max_chips_per_pass;
  if (pass <= 0 || x.size(0) <= pass) return backbone_->forward(x);
  std::vector<torch::Tensor> parts;
  for (const torch::Tensor& chunk : x.split(pass)) parts.push_back(backbone_->forward(chunk));
  return torch::cat(parts);
}

absl::StatusOr<torch::Tensor> Embedder::Features(const std::vector<cv::Mat>& chips) const {
  if (chips.empty()) return torch::empty({0, backbone_->feature_dim()});
  VF_ASSIGN_OR_RETURN(const torch::Tensor x, ChipsToTensor(chips));
  return Guarded("the backbone", [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard no_grad;
    return ForwardInPasses(x.to(device_)).to(torch::kCPU);
  });
}

absl::StatusOr<torch::Tensor> Embedder::Embed(const std::vector<FaceViews>& faces) const {
  if (faces.empty()) return torch::empty({0, head_->output_dim()});
  const size_t k = faces[0].crops.size();
  std::vector<cv::Mat> chips;
  chips.reserve(faces.size() * k);
  for (size_t i = 0; i < faces.size(); ++i) {
    if (faces[i].crops.size() != k || k == 0) {
      return absl::InvalidArgumentError(absl::StrCat("face ", i, " has ", faces[i].crops.size(),
                                                     " views; every face of a batch needs the same number (", k,
                                                     "), at least one"));
    }
    for (const cv::Mat& crop : faces[i].crops) {
      if (crop.rows != crop.cols) {
        return absl::InvalidArgumentError(
            absl::StrCat("face ", i, " has a ", crop.cols, "x", crop.rows, " view; views are square"));
      }
      chips.push_back(crop);
    }
  }
  // [N*k, 3, W, W]: each face's views next to each other.
  VF_ASSIGN_OR_RETURN(const torch::Tensor x, ChipsToTensor(chips));
  return Guarded("face embedding", [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard no_grad;
    const auto n = static_cast<int64_t>(faces.size()), views = static_cast<int64_t>(k), m = n * views;
    const torch::Tensor on_device = x.to(device_);
    torch::Tensor view_features;
    if (options_.flip_average) {
      // One batch of 2M: more work per pass, which oneDNN turns into better throughput than two calls.
      const auto both = ForwardInPasses(torch::cat({on_device, on_device.flip({3})}));
      const int64_t d = both.size(1);
      // Each view followed by its mirror, the order of TtaConfig::views, which veriface-eval's cached
      // features follow too: the same mean, summed in the same order.
      view_features =
          torch::stack({both.slice(0, 0, m).view({n, views, d}), both.slice(0, m, 2 * m).view({n, views, d})}, 2)
              .view({n, 2 * views, d});
    } else {
      const auto f = ForwardInPasses(on_device);
      view_features = f.view({n, views, f.size(1)});
    }
    return ReduceViews(view_features, *head_).to(torch::kCPU).contiguous();
  });
}

}  // namespace veriface
