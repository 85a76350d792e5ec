#pragma once
// Where tensors live: parsed once from configuration ("cpu", "cuda:N" or "auto").

#include <torch/torch.h>

#include <string>

#include "absl/status/statusor.h"

namespace veriface {

// "auto" picks the first CUDA device when this LibTorch has one, else the CPU.
absl::StatusOr<torch::Device> ParseDevice(const std::string& spec);

// Sets LibTorch's intra-op thread pool size; 0 means one per hardware core. This build of LibTorch
// otherwise starts with a single thread.
void SetTorchThreads(int threads);

}  // namespace veriface
