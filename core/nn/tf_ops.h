#pragma once
// TensorFlow semantics that LibTorch does not offer directly.

#include <torch/torch.h>

#include <cstdint>
#include <utility>

namespace veriface {

// TF 'SAME' padding along one axis of n: out = ceil(n / stride); the total padding is split
// floor(total / 2) before and the rest after (an odd total puts the extra row/column at the bottom/right).
std::pair<int64_t, int64_t> TfSamePadding(int64_t n, int64_t kernel, int64_t stride);

// TF 'SAME' max-pool: TfSamePadding with -inf. ceil_mode pooling agrees only in some cases, so the
// padding is spelled out.
torch::Tensor MaxPoolTfSame(const torch::Tensor& x, int64_t kernel, int64_t stride);

// [N, C, H, W] zero-padded as a TF 'SAME' convolution of `kernel` at `stride` pads it, for a convolution
// that then pads nothing (at stride 1 and an odd kernel the padding is symmetric, and a convolution's own
// padding does the same more cheaply).
torch::Tensor PadTfSame(const torch::Tensor& x, int64_t kernel, int64_t stride);

// Flattens [N, C, H, W] in TensorFlow's NHWC order, which dense weights imported from TF expect.
torch::Tensor FlattenNhwc(const torch::Tensor& x);

// PReLU with a per-channel slope on axis 1 (x if x > 0 else alpha * x), for [N, C] and [N, C, H, W].
torch::Tensor PRelu(const torch::Tensor& x, const torch::Tensor& alpha);

}  // namespace veriface
