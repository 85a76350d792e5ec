#pragma once
// Builds training batches on worker threads ahead of the training step, and hands them out in step
// order. Each batch is a pure function of its step index (the caller seeds every random draw from it),
// so the batches are the same whatever the thread count or timing.

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface {

class BatchPrefetcher {
 public:
  using MakeFn = std::function<absl::StatusOr<torch::Tensor>(int64_t step)>;

  // Steps 0 .. steps-1; at most `depth` batches are built ahead of the consumer. threads == 0 builds
  // each batch on the calling thread inside Next().
  BatchPrefetcher(int64_t steps, int threads, int depth, MakeFn make);
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // The next step's batch (blocking); OUT_OF_RANGE after the last.
  absl::StatusOr<torch::Tensor> Next();

 private:
  void Work();

  const int64_t steps_;
  const int depth_;
  MakeFn make_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t next_to_make_ = 0;
  int64_t next_to_hand_ = 0;
  bool stop_ = false;
  std::map<int64_t, absl::StatusOr<torch::Tensor>> ready_;
  std::vector<std::thread> workers_;
};

}  // namespace veriface
