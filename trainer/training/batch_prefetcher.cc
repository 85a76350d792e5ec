#include "trainer/training/batch_prefetcher.h"

#include "absl/strings/str_cat.h"

namespace veriface {

BatchPrefetcher::BatchPrefetcher(int64_t steps, int threads, int depth, MakeFn make)
    : steps_(steps), depth_(std::max(1, depth)), make_(std::move(make)) {
  for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { Work(); });
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void BatchPrefetcher::Work() {
  for (;;) {
    int64_t step = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || next_to_make_ >= steps_ || next_to_make_ < next_to_hand_ + depth_; });
      if (stop_ || next_to_make_ >= steps_) return;
      step = next_to_make_++;
    }
    auto batch = make_(step);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(step, std::move(batch));
    }
    cv_.notify_all();
  }
}

absl::StatusOr<torch::Tensor> BatchPrefetcher::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (next_to_hand_ >= steps_) return absl::OutOfRangeError(absl::StrCat("all ", steps_, " batches handed out"));
  const int64_t step = next_to_hand_;
  if (workers_.empty()) {
    ++next_to_hand_;
    lock.unlock();
    return make_(step);
  }
  cv_.wait(lock, [this, step] { return ready_.count(step) > 0; });
  auto batch = std::move(ready_.at(step));
  ready_.erase(step);
  ++next_to_hand_;
  lock.unlock();
  cv_.notify_all();
  return batch;
}

}  // namespace veriface
