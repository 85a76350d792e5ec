#include "core/serving/pixel_budget.h"

#include <malloc.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace veriface {
namespace {

std::string Mpx(int64_t pixels) { return absl::StrFormat("%.1f Mpixel", static_cast<double>(pixels) / 1e6); }

}  // namespace

PixelBudget::PixelBudget(int64_t max_pixels, int64_t trim_after_pixels)
    : max_pixels_(max_pixels), trim_after_pixels_(trim_after_pixels), trimmer_([this] { TrimLoop(); }) {}

PixelBudget::~PixelBudget() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  trimmer_.join();
}

absl::StatusOr<PixelBudget::Reservation> PixelBudget::Reserve(int64_t pixels, const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (max_pixels_ > 0 && pixels > max_pixels_) {
    return absl::InvalidArgumentError(absl::StrCat(what, " would need ", Mpx(pixels), " decoded, more than the ",
                                                   Mpx(max_pixels_),
                                                   " the server holds for all calls at once "
                                                   "(limits.max_inflight_pixels): send fewer or smaller images"));
  }
  if (max_pixels_ > 0 && in_use_ + pixels > max_pixels_) {
    return absl::ResourceExhaustedError(absl::StrCat("the server is holding ", Mpx(in_use_), " of decoded images of ",
                                                     Mpx(max_pixels_), " (limits.max_inflight_pixels); ", what,
                                                     " would need ", Mpx(pixels), " more: retry shortly"));
  }
  in_use_ += pixels;
  return Reservation(this, pixels);
}

void PixelBudget::Release(int64_t pixels) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_ -= pixels;
    released_since_trim_ += pixels;
    if (in_use_ == 0 && released_since_trim_ >= trim_after_pixels_) {
      released_since_trim_ = 0;
      trim_wanted_ = true;
      wake = true;
    }
  }
  if (wake) wake_.notify_one();
}

void PixelBudget::TrimLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return trim_wanted_ || stopping_; });
    if (stopping_) return;
    trim_wanted_ = false;
    lock.unlock();
    // glibc keeps freed chunks in its arenas; this returns what it can of them (all arenas) to the system.
    malloc_trim(0);
    lock.lock();
    ++trims_;
  }
}

int64_t PixelBudget::in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

int64_t PixelBudget::trims() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return trims_;
}

PixelBudget::Reservation::Reservation(Reservation&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)), pixels_(std::exchange(other.pixels_, 0)) {}

PixelBudget::Reservation& PixelBudget::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    if (budget_ != nullptr) budget_->Release(pixels_);
    budget_ = std::exchange(other.budget_, nullptr);
    pixels_ = std::exchange(other.pixels_, 0);
  }
  return *this;
}

PixelBudget::Reservation::~Reservation() {
  if (budget_ != nullptr) budget_->Release(pixels_);
}

}  // namespace veriface
