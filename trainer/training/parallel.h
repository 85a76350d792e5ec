#pragma once
// Runs fn(0 .. n-1) on `threads` threads and returns the first error (the rest of the work is skipped
// once one fails). Each index runs exactly once; the order across threads is unspecified, so fn must
// write only to its own slot of any shared output.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace veriface {

inline absl::Status ParallelFor(int64_t n, int threads, const std::function<absl::Status(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  absl::Status first_error;
  std::mutex mu;
  const auto work = [&] {
    for (int64_t i = next++; i < n && !failed; i = next++) {
      absl::Status s = fn(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) first_error = std::move(s);
      }
    }
  };
  const int count = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  std::vector<std::thread> pool;
  for (int t = 1; t < count; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return first_error;
}

}  // namespace veriface
