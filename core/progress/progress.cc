#include "core/progress/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace veriface {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBarWidth = 24;

// Only the standard streams can be asked whether they are a terminal; any other stream is taken to be a
// file, which gets whole lines rather than redraws.
bool IsTerminal(const std::ostream* out) {
  if (out == &std::cerr || out == &std::clog) return ::isatty(STDERR_FILENO) == 1;
  if (out == &std::cout) return ::isatty(STDOUT_FILENO) == 1;
  return false;
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, std::ostream* out, std::string rate_unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      rate_unit_(rate_unit.empty() ? unit_ : std::move(rate_unit)),
      out_(total > 0 ? out : nullptr),
      terminal_(IsTerminal(out)),
      start_(Clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(int64_t done, const std::string& text, int64_t rate_items) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || out_ == nullptr) return;
  done_ = done;
  rate_items_ = rate_items;
  text_ = text;
  const auto now = Clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() < (terminal_ ? 0.2 : 10.0)) return;
  last_draw_ = now;
  Draw(false);
}

void ProgressBar::Finish(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || out_ == nullptr) return;
  finished_ = true;
  if (!text.empty()) text_ = text;
  Draw(true);
}

void ProgressBar::Draw(bool final_line) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double counted = static_cast<double>(rate_items_ > 0 ? rate_items_ : done_);
  const double rate = elapsed > 0 ? counted / elapsed : 0;
  const std::string text = text_.empty() ? "" : absl::StrCat("  ", text_);
  std::string line;
  if (final_line) {
    line = absl::StrFormat("%s%d/%d %s in %s (%.1f %s/s)%s", label_.empty() ? "" : label_ + ": ", done_, total_, unit_,
                           FormatDuration(elapsed), rate, rate_unit_, text);
  } else {
    const double fraction = std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0);
    const int filled = static_cast<int>(fraction * kBarWidth);
    const double eta = done_ > 0 ? elapsed / static_cast<double>(done_) * static_cast<double>(total_ - done_) : NAN;
    line = absl::StrFormat("%s[%s%s] %d/%d %s %5.1f%%  %.1f %s/s  ETA %s%s", label_.empty() ? "" : label_ + " ",
                           std::string(filled, '#'), std::string(kBarWidth - filled, '.'), done_, total_, unit_,
                           100 * fraction, rate, rate_unit_, FormatDuration(eta), text);
  }
  if (terminal_) {
    *out_ << '\r' << line << "\x1b[K" << (final_line ? "\n" : "");
  } else {
    *out_ << line << '\n';
  }
  out_->flush();
}

}  // namespace veriface
