#include "core/common/device.h"

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace veriface {

absl::StatusOr<torch::Device> ParseDevice(const std::string& spec) {
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  if (absl::StartsWith(spec, "cuda")) {
    int index = 0;
    if (spec != "cuda" &&
        !(absl::StartsWith(spec, "cuda:") && absl::SimpleAtoi(spec.substr(5), &index) && index >= 0)) {
      return absl::InvalidArgumentError(absl::StrCat("device '", spec, "' is not 'cpu', 'auto', 'cuda' or 'cuda:N'"));
    }
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", spec, "' asked for, but this LibTorch build sees no CUDA device; use 'cpu' or 'auto'"));
    }
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      return absl::FailedPreconditionError(
          absl::StrCat("device '", spec, "' asked for, but only ", count, " CUDA device(s) exist"));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(absl::StrCat("device '", spec, "' is not 'cpu', 'auto', 'cuda' or 'cuda:N'"));
}

void SetTorchThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
}

}  // namespace veriface
