#include "core/embed/embedder.h"

#include <stdexcept>

namespace veriface {

torch::Tensor ChipsToTensor(const std::vector<cv::Mat>& chips) {
  if (chips.empty()) return torch::empty({0, 3, 0, 0});
  const int h = chips[0].rows, w = chips[0].cols;
  auto batch = torch::empty({static_cast<int64_t>(chips.size()), h, w, 3}, torch::kUInt8);
  for (size_t i = 0; i < chips.size(); ++i) {
    const cv::Mat& c = chips[i];
    if (c.type() != CV_8UC3 || c.rows != h || c.cols != w) {
      throw std::invalid_argument("chips must all be CV_8UC3 of the same size");
    }
    cv::Mat dst(h, w, CV_8UC3, batch[static_cast<int64_t>(i)].data_ptr<uint8_t>());
    c.copyTo(dst);
  }
  return batch.permute({0, 3, 1, 2}).to(torch::kFloat32).contiguous();
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

torch::Tensor Embedder::Features(const std::vector<cv::Mat>& chips) const {
  torch::NoGradGuard no_grad;
  if (chips.empty()) return torch::empty({0, backbone_->feature_dim()});
  return ForwardInPasses(ChipsToTensor(chips).to(device_)).to(torch::kCPU);
}

torch::Tensor Embedder::Embed(const std::vector<cv::Mat>& chips) const {
  torch::NoGradGuard no_grad;
  if (chips.empty()) return torch::empty({0, head_->output_dim()});
  auto x = ChipsToTensor(chips).to(device_);
  const int64_t n = x.size(0), width = x.size(3);
  if (width == 0 || x.size(2) % width != 0) {
    throw std::invalid_argument("a chip's height must be a whole number of its widths (stacked square crops)");
  }
  const int64_t crops = x.size(2) / width;
  // Unstack: [N, 3, k*W, W] -> [N*k, 3, W, W], each face's crops next to each other.
  x = x.view({n, 3, crops, width, width}).permute({0, 2, 1, 3, 4}).reshape({n * crops, 3, width, width});
  const int64_t m = n * crops;
  torch::Tensor features;
  if (options_.flip_average) {
    // One batch of 2M: more work per pass, which oneDNN turns into better throughput than two calls.
    const auto both = ForwardInPasses(torch::cat({x, x.flip({3})}));
    features = (both.slice(0, 0, m) + both.slice(0, m, 2 * m)) / 2;
  } else {
    features = ForwardInPasses(x);
  }
  // The mean over a face's crops; with one crop this is the identity, bit for bit.
  features = features.reshape({n, crops, features.size(1)}).mean(1);
  const auto embedding = head_->forward(features);
  return torch::nn::functional::normalize(embedding, torch::nn::functional::NormalizeFuncOptions().dim(1))
      .to(torch::kCPU)
      .contiguous();
}

}  // namespace veriface
