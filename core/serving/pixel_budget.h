#pragma once
// The decoded images that calls in flight may hold, bounded in pixels. A call reserves each image's
// pixels from its header, before decoding it, and holds them until the call ends; past the budget it
// fails at once with RESOURCE_EXHAUSTED instead of decoding (and queueing) more. Without this, 16 callers
// sending 35-Mpixel photos took the server from 0.7 GB to 4.4 GB, and the detection queue admits 64.
//
// When the budget drains after holding much, the freed memory is handed back to the system (malloc_trim)
// on a thread of the budget's own, so that no call waits for it: glibc otherwise keeps the peak of a
// burst resident for good.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace veriface {

class PixelBudget {
 public:
  // `max_pixels` 0: unbounded (still trims after bursts). `trim_after_pixels`: how many pixels must have
  // been released since the last trim before a drained budget trims again.
  explicit PixelBudget(int64_t max_pixels, int64_t trim_after_pixels = 32'000'000);
  ~PixelBudget();
  PixelBudget(const PixelBudget&) = delete;
  PixelBudget& operator=(const PixelBudget&) = delete;

  // Pixels held until it is destroyed (or moved from).
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&& other) noexcept;
    ~Reservation();
    int64_t pixels() const { return pixels_; }

   private:
    friend class PixelBudget;
    Reservation(PixelBudget* budget, int64_t pixels) : budget_(budget), pixels_(pixels) {}
    PixelBudget* budget_ = nullptr;
    int64_t pixels_ = 0;
  };

  // RESOURCE_EXHAUSTED when `pixels` more would pass the budget; INVALID_ARGUMENT when they alone would
  // (no wait makes room for them). `what` names the image in messages.
  absl::StatusOr<Reservation> Reserve(int64_t pixels, const std::string& what);

  int64_t max_pixels() const { return max_pixels_; }
  int64_t in_use() const;
  int64_t trims() const;  // how many times freed memory was handed back

 private:
  void Release(int64_t pixels);
  void TrimLoop();

  const int64_t max_pixels_;
  const int64_t trim_after_pixels_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  int64_t in_use_ = 0;
  int64_t released_since_trim_ = 0;
  int64_t trims_ = 0;
  bool trim_wanted_ = false;
  bool stopping_ = false;
  std::thread trimmer_;  // last: started once the fields above exist
};

}  // namespace veriface
