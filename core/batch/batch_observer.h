#pragma once
// What a dynamic batcher reports about itself, for metrics. Kept free of any metrics library so that
// core/ stays independent of prometheus-cpp; the server adapts this to its registry.

#include <chrono>
#include <cstdint>
#include <string>

namespace veriface {

enum class DropReason {
  kQueueFull,         // refused at Submit: the queue held max_queue_size items
  kDeadlineExceeded,  // its deadline had passed when a worker took it (or at Submit)
  kCancelled,         // its is_cancelled() said true when a worker took it
  kShutdown,          // submitted after Shutdown()
};

const char* DropReasonName(DropReason reason);

// Called from the submitting threads and the batcher's workers, concurrently: implementations must be
// thread-safe and quick (no blocking), and must not call back into the batcher. `batcher` is the
// batcher's name, so one observer can serve several batchers.
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  // The number of items waiting, after every change.
  virtual void OnQueueDepth(const std::string& /*batcher*/, int64_t /*depth*/) {}
  // How long one item waited between Submit and a worker taking it.
  virtual void OnQueueWait(const std::string& /*batcher*/, std::chrono::microseconds /*wait*/) {}
  // One batch function call: its size, its duration, and whether it succeeded as a whole (false when
  // it threw or returned the wrong number of results).
  virtual void OnBatch(const std::string& /*batcher*/, int64_t /*size*/, std::chrono::microseconds /*compute*/,
                       bool /*ok*/) {}
  // One item answered without reaching the batch function.
  virtual void OnDropped(const std::string& /*batcher*/, DropReason /*reason*/) {}
};

}  // namespace veriface
