#include "core/common/retry_after.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/types/optional.h"

namespace veriface {
namespace {

// A type URL of our own: absl keys payloads by URL, and nothing outside veriface reads this one.
constexpr char kRetryAfterUrl[] = "type.veriface.dev/veriface.RetryAfterMs";

}  // namespace

absl::Status WithRetryAfter(absl::Status status, std::chrono::milliseconds wait) {
  if (status.ok()) return status;
  status.SetPayload(kRetryAfterUrl, absl::Cord(std::to_string(wait.count())));
  return status;
}

std::optional<std::chrono::milliseconds> RetryAfter(const absl::Status& status) {
  // absl's own optional: this Abseil is built for C++14 and does not alias std::optional.
  const absl::optional<absl::Cord> payload = status.GetPayload(kRetryAfterUrl);
  int64_t ms = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &ms)) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

}  // namespace veriface
