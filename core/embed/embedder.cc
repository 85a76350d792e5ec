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

torch::Tensor Embedder::Features(const std::vector<cv::Mat>& chips) const {
  torch::NoGradGuard no_grad;
  if (chips.empty()) return torch::empty({0, backbone_->feature_dim()});
  return backbone_->forward(ChipsToTensor(chips).to(device_)).to(torch::kCPU);
}

torch::Tensor Embedder::Embed(const std::vector<cv::Mat>& chips) const {
  torch::NoGradGuard no_grad;
  if (chips.empty()) return torch::empty({0, head_->output_dim()});
  auto x = ChipsToTensor(chips).to(device_);
  const int64_t n = x.size(0);
  torch::Tensor features;
  if (options_.flip_average) {
    // One batch of 2N: more work per call, which oneDNN turns into better throughput than two calls.
    const auto both = backbone_->forward(torch::cat({x, x.flip({3})}));
    features = (both.slice(0, 0, n) + both.slice(0, n, 2 * n)) / 2;
  } else {
    features = backbone_->forward(x);
  }
  const auto embedding = head_->forward(features);
  return torch::nn::functional::normalize(embedding, torch::nn::functional::NormalizeFuncOptions().dim(1))
      .to(torch::kCPU)
      .contiguous();
}

}  // namespace veriface
