#include "core/batch/dynamic_batcher.h"

namespace veriface {

const char* DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kQueueFull:
      return "queue_full";
    case DropReason::kDeadlineExceeded:
      return "deadline_exceeded";
    case DropReason::kCancelled:
      return "cancelled";
    case DropReason::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

absl::Status ValidateDynamicBatcherOptions(const DynamicBatcherOptions& options) {
  const std::string& name = options.name;
  if (name.empty()) return absl::InvalidArgumentError("batcher name must not be empty");
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batcher '", name, "': max_batch ", options.max_batch, " < 1"));
  }
  if (options.max_queue_delay.count() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batcher '", name, "': max_queue_delay ", options.max_queue_delay.count(), " us is negative"));
  }
  if (options.max_queue_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batcher '", name, "': max_queue_size ", options.max_queue_size, " < 1"));
  }
  if (options.workers < 1 || options.workers > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("batcher '", name, "': workers ", options.workers, " is not in [1, 256]"));
  }
  return absl::OkStatus();
}

}  // namespace veriface
