#pragma once
// A one-line progress display for long loops: count or step, rate, ETA and free text (loss, ...).
// On a terminal it redraws in place; into a file or pipe it writes a line every few seconds, so logs
// stay readable. Thread-safe.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>

namespace veriface {

class ProgressBar {
 public:
  // `out` may be null (silent). `unit` names what is counted in the rate ("img", "step").
  ProgressBar(std::string label, int64_t total, std::string unit, std::ostream* out);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` items so far (of `total`); `rate_items` is what the rate counts, when it differs (images per
  // second while `done` counts steps); 0 means `done`.
  void Update(int64_t done, const std::string& text = "", int64_t rate_items = 0);
  // Final redraw and newline; also done by the destructor.
  void Finish(const std::string& text = "");

 private:
  void Draw(int64_t done, const std::string& text, int64_t rate_items, bool final);

  std::string label_;
  int64_t total_;
  std::string unit_;
  std::ostream* out_;
  bool tty_;
  bool finished_ = false;
  int64_t last_done_ = 0;
  int64_t last_rate_items_ = 0;
  std::string last_text_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mu_;
};

// "1:02:03" / "4:05" for a duration in seconds; "?" when unknown (negative or not finite).
std::string FormatDuration(double seconds);

}  // namespace veriface
