#pragma once
// The calls doing model work at once, bounded. Past the bound a call is refused at once with
// RESOURCE_EXHAUSTED and a retry hint instead of waiting in the model's queues: a queue deeper than the
// callers' deadlines fills with calls that expire before their turn, after the work ahead of them has used
// the time, and goodput collapses under overload (bench/results/hardening). Refusing here decodes nothing
// and holds nothing, so that the calls admitted finish at the speed of the peak (gRPC has already read
// and parsed the request by then: that cost is not ours to save here).
//
// The hint spreads the refused callers' returns over the time slots take to free. One slot frees every
// h / n (the recent time a call holds its slot over the number of slots); with w callers already told to
// come back and not yet due, a new one is told to wait until about w / kReturnsPerFree slots have freed,
// so that a few callers, not all of them, arrive for each freed slot: refusals then stay a few per slot
// freed however many callers wait, instead of growing with them and taking the CPU the calls in progress
// need (bench/results/hardening).

#include <chrono>
#include <functional>
#include <mutex>
#include <queue>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface {

class CallSlots {
 public:
  using Clock = std::chrono::steady_clock;

  // `max_calls` 0: unbounded. `on_change`, if given, is told the slots in use after every take and give
  // back, in order (it runs under the slots' lock: it must be quick and must not call back).
  explicit CallSlots(int max_calls, std::function<void(int in_use)> on_change = nullptr);
  CallSlots(const CallSlots&) = delete;
  CallSlots& operator=(const CallSlots&) = delete;

  // One call's slot, given back when it is destroyed (or moved from).
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();

   private:
    friend class CallSlots;
    Slot(CallSlots* slots, Clock::time_point taken) : slots_(slots), taken_(taken) {}
    void Release();
    CallSlots* slots_ = nullptr;
    Clock::time_point taken_;
  };

  // A slot, or RESOURCE_EXHAUSTED (with RetryAfter, core/common/retry_after.h) when all are taken.
  absl::StatusOr<Slot> Take();

  int max_calls() const { return max_calls_; }
  int in_use() const;
  // How long a caller refused now would be told to wait before it tries again.
  std::chrono::milliseconds RetryHint();

 private:
  void Give(Clock::duration held);
  // Forgets the callers whose wait is over, then prices the next one's.
  std::chrono::milliseconds RetryHintLocked(Clock::time_point now);

  const int max_calls_;
  const std::function<void(int)> on_change_;
  mutable std::mutex mutex_;
  int in_use_ = 0;
  // Exponentially weighted mean of how long a slot is held; negative until the first is given back.
  double mean_hold_seconds_ = -1;
  // When each refused caller still waiting was told to come back, soonest first.
  std::priority_queue<Clock::time_point, std::vector<Clock::time_point>, std::greater<>> due_;
};

}  // namespace veriface
