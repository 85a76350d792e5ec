#pragma once
// The one progress line of the command-line tools (veriface enroll, veriface-eval, veriface-train): a bar,
// the count, the rate, the time left and free text (a loss, a failure count). On a terminal it redraws one
// line in place; into a file or pipe (nohup, CI logs) it writes a whole line every ten seconds, so that logs
// stay readable. Thread-safe. It needs Abseil only, so that the client links it without LibTorch.
//
//   detect [######..................] 120/480 images  25.0%  31.2 images/s  ETA 0:12
//   detect: 480/480 images in 0:15 (31.2 images/s)

#include <chrono>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>

namespace veriface {

class ProgressBar {
 public:
  // `out` null: silent (so is an empty loop, total <= 0). `unit` names what `done` and `total` count
  // ("images", "steps"); `rate_unit` what the rate counts when that differs (images per second while steps
  // are counted, see Update's rate_items); empty: `unit`. `label` may be empty.
  ProgressBar(std::string label, int64_t total, std::string unit, std::ostream* out, std::string rate_unit = "");
  // Finish().
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` of `total` so far; `text` follows the numbers; `rate_items` is what the rate counts when it is
  // not `done` (0: `done`).
  void Update(int64_t done, const std::string& text = "", int64_t rate_items = 0);
  // The final line (total time and mean rate) and a newline, once; `text` replaces the last Update's unless
  // it is empty.
  void Finish(const std::string& text = "");

 private:
  void Draw(bool final_line);

  const std::string label_;
  const int64_t total_;
  const std::string unit_;
  const std::string rate_unit_;
  std::ostream* const out_;
  const bool terminal_;
  const std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  bool finished_ = false;
  int64_t done_ = 0;
  int64_t rate_items_ = 0;
  std::string text_;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1:02:03" or "4:05" for a duration in seconds; "?" when unknown (negative or not finite).
std::string FormatDuration(double seconds);

}  // namespace veriface
