#include "trainer/eval/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "absl/strings/str_format.h"

namespace veriface {

Progress::Progress(std::string what, int64_t total, std::string unit, bool enabled)
    : what_(std::move(what)),
      total_(total),
      unit_(std::move(unit)),
      enabled_(enabled && total > 0),
      terminal_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() { Finish(); }

std::string Progress::FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

void Progress::Update(int64_t done) {
  done_ = done;
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (since < (terminal_ ? 0.25 : 10.0) && done < total_) return;
  last_print_ = now;
  Print(false);
}

void Progress::Finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  Print(true);
}

void Progress::Print(bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  const double fraction = static_cast<double>(done_) / static_cast<double>(total_);
  std::string line;
  if (final_line) {
    line = absl::StrFormat("%s: %d/%d %s in %s (%.1f %s/s)", what_, done_, total_, unit_, FormatDuration(elapsed), rate,
                           unit_);
  } else {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth);
    const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : NAN;
    line = absl::StrFormat("%s [%s%s] %d/%d %s %5.1f%%  %.1f %s/s  ETA %s", what_, std::string(filled, '#'),
                           std::string(kWidth - filled, '.'), done_, total_, unit_, 100 * fraction, rate, unit_,
                           FormatDuration(eta));
  }
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace veriface
