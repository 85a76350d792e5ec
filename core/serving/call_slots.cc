#include "core/serving/call_slots.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/retry_after.h"

namespace veriface {
namespace {

// The weight of the newest hold in the mean: about the last 20 calls, so that the hint follows a change
// of load within seconds without jumping with every call.
constexpr double kNewestWeight = 0.05;
// Before any call has finished, and the bounds of every hint: a client told 0 would come straight back,
// and one told minutes would leave a server idle that has long recovered.
constexpr std::chrono::milliseconds kFirstHint{100}, kShortestHint{5}, kLongestHint{10'000};
// Callers arriving for each freed slot: more than one, so that a slot seldom waits idle for the next
// caller; few, so that refusals stay cheap.
constexpr double kReturnsPerFree = 4;
// The most waiting callers remembered: callers that ignore their hints come back at once and would
// otherwise be counted without bound. Past it the hint is already the longest.
constexpr size_t kMostRemembered = 1'000'000;

}  // namespace

CallSlots::CallSlots(int max_calls, std::function<void(int)> on_change)
    : max_calls_(std::max(0, max_calls)), on_change_(std::move(on_change)) {}

CallSlots::Slot::Slot(Slot&& other) noexcept : slots_(std::exchange(other.slots_, nullptr)), taken_(other.taken_) {}

CallSlots::Slot& CallSlots::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    slots_ = std::exchange(other.slots_, nullptr);
    taken_ = other.taken_;
  }
  return *this;
}

CallSlots::Slot::~Slot() { Release(); }

void CallSlots::Slot::Release() {
  if (slots_ != nullptr) std::exchange(slots_, nullptr)->Give(Clock::now() - taken_);
}

absl::StatusOr<CallSlots::Slot> CallSlots::Take() {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (max_calls_ > 0 && in_use_ >= max_calls_) {
    const Clock::time_point now = Clock::now();
    const std::chrono::milliseconds wait = RetryHintLocked(now);
    if (due_.size() < kMostRemembered) due_.push(now + wait);
    return WithRetryAfter(
        absl::ResourceExhaustedError(absl::StrCat("the server is doing its limit of ", max_calls_,
                                                  " calls at once (limits.max_concurrent_calls); retry in ",
                                                  wait.count(), " ms (retry-after-ms)")),
        wait);
  }
  ++in_use_;
  if (on_change_) on_change_(in_use_);
  return Slot(this, Clock::now());
}

void CallSlots::Give(Clock::duration held) {
  const std::lock_guard<std::mutex> lock(mutex_);
  --in_use_;
  if (on_change_) on_change_(in_use_);
  const double seconds = std::chrono::duration<double>(held).count();
  mean_hold_seconds_ =
      mean_hold_seconds_ < 0 ? seconds : (1 - kNewestWeight) * mean_hold_seconds_ + kNewestWeight * seconds;
}

int CallSlots::in_use() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

std::chrono::milliseconds CallSlots::RetryHint() {
  const std::lock_guard<std::mutex> lock(mutex_);
  return RetryHintLocked(Clock::now());
}

std::chrono::milliseconds CallSlots::RetryHintLocked(Clock::time_point now) {
  while (!due_.empty() && due_.top() <= now) due_.pop();
  // With n slots each held for h on average, one frees every h / n.
  const double per_slot_seconds = mean_hold_seconds_ < 0 ? std::chrono::duration<double>(kFirstHint).count()
                                                         : mean_hold_seconds_ / std::max(1, max_calls_);
  const double frees = std::max(1.0, static_cast<double>(due_.size()) / kReturnsPerFree);
  const double wait_ms = std::min(per_slot_seconds * frees * 1000 + 0.5, static_cast<double>(kLongestHint.count()));
  return std::clamp(std::chrono::milliseconds(static_cast<int64_t>(wait_ms)), kShortestHint, kLongestHint);
}

}  // namespace veriface
