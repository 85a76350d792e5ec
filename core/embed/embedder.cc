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

Embedder::Embedder(std::vector<std::shared_ptr<Backbone>> backbones, std::shared_ptr<Head> head, torch::Device device,
                   EmbedderOptions options)
    : backbones_(std::move(backbones)), head_(std::move(head)), device_(device), options_(options) {
  for (const auto& b : backbones_) {
    b->eval();
    b->to(device_);
    member_dims_.push_back(b->feature_dim());
  }
  head_->eval();
  head_->to(device_);
}

torch::Tensor Embedder::ForwardInPasses(Backbone& backbone, const torch::Tensor& x) const {
  const int64_t pass = options_.max_chips_per_pass;
  if (pass <= 0 || x.size(0) <= pass) return backbone.forward(x);
  std::vector<torch::Tensor> parts;
  for (const torch::Tensor& chunk : x.split(pass)) parts.push_back(backbone.forward(chunk));
  return torch::cat(parts);
}

absl::StatusOr<torch::Tensor> Embedder::Features(const std::vector<cv::Mat>& chips, size_t member) const {
  if (member >= backbones_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("no backbone ", member, " in a bundle of ", backbones_.size()));
  }
  Backbone& backbone = *backbones_[member];
  if (chips.empty()) return torch::empty({0, backbone.feature_dim()});
  VF_ASSIGN_OR_RETURN(const torch::Tensor x, ChipsToTensor(chips));
  return Guarded("the backbone", [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard no_grad;
    return ForwardInPasses(backbone, x.to(device_)).to(torch::kCPU);
  });
}

absl::StatusOr<torch::Tensor> Embedder::MemberViewFeatures(const std::vector<FaceViews>& faces, size_t member,
                                                           size_t views) const {
  const auto side = static_cast<int>(backbones_[member]->input_size());
  std::vector<cv::Mat> chips;
  chips.reserve(faces.size() * views);
  for (size_t i = 0; i < faces.size(); ++i) {
    for (size_t v = member * views; v < (member + 1) * views; ++v) {
      const cv::Mat& crop = faces[i].crops[v];
      if (crop.rows != side || crop.cols != side) {
        return absl::InvalidArgumentError(absl::StrCat("face ", i, " has a ", crop.cols, "x", crop.rows, " view ", v,
                                                       "; backbone ", member, " takes ", side, "x", side));
      }
      chips.push_back(crop);
    }
  }
  // [N*views, 3, W, W]: each face's views next to each other.
  VF_ASSIGN_OR_RETURN(const torch::Tensor x, ChipsToTensor(chips));
  const auto n = static_cast<int64_t>(faces.size()), k = static_cast<int64_t>(views), m = n * k;
  Backbone& backbone = *backbones_[member];
  const torch::Tensor on_device = x.to(device_);
  if (!options_.flip_average) {
    const auto f = ForwardInPasses(backbone, on_device);
    return f.view({n, k, f.size(1)});
  }
  // One batch of 2M: more work per pass, which oneDNN turns into better throughput than two calls.
  const auto both = ForwardInPasses(backbone, torch::cat({on_device, on_device.flip({3})}));
  const int64_t d = both.size(1);
  // Each view followed by its mirror, the order of TtaConfig::views, which veriface-eval's cached features
  // follow too: the same mean, summed in the same order.
  return torch::stack({both.slice(0, 0, m).view({n, k, d}), both.slice(0, m, 2 * m).view({n, k, d})}, 2)
      .view({n, 2 * k, d});
}

absl::StatusOr<torch::Tensor> Embedder::Embed(const std::vector<FaceViews>& faces) const {
  if (faces.empty()) return torch::empty({0, head_->output_dim()});
  const size_t members = backbones_.size();
  const size_t total = faces[0].crops.size();
  for (size_t i = 0; i < faces.size(); ++i) {
    if (faces[i].crops.size() != total || total == 0 || total % members != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "face ", i, " has ", faces[i].crops.size(), " views; every face of a batch needs the same number (", total,
          "), at least one", members > 1 ? absl::StrCat(" for each of the ", members, " backbones") : ""));
    }
  }
  return Guarded("face embedding", [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    for (size_t member = 0; member < members; ++member) {
      VF_ASSIGN_OR_RETURN(torch::Tensor f, MemberViewFeatures(faces, member, total / members));
      parts.push_back(std::move(f));
    }
    const torch::Tensor view_features = parts.size() == 1 ? parts[0] : torch::cat(parts, 2);
    return ReduceViews(view_features, *head_, member_dims_).to(torch::kCPU).contiguous();
  });
}

}  // namespace veriface
