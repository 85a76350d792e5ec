#include "core/train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "absl/strings/str_format.h"

namespace veriface {

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, std::ostream* out)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      out_(out),
      tty_(out == &std::cerr ? isatty(fileno(stderr)) != 0 : (out == &std::cout && isatty(fileno(stdout)) != 0)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(last_text_); }

void ProgressBar::Update(int64_t done, const std::string& text, int64_t rate_items) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || out_ == nullptr) return;
  last_done_ = done;
  last_rate_items_ = rate_items;
  last_text_ = text;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (tty_ ? 0.2 : 10.0)) return;
  last_draw_ = now;
  Draw(done, text, rate_items, false);
}

void ProgressBar::Finish(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (out_ == nullptr) return;
  Draw(last_done_ > 0 ? last_done_ : total_, text, last_rate_items_, true);
}

void ProgressBar::Draw(int64_t done, const std::string& text, int64_t rate_items, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double counted = static_cast<double>(rate_items > 0 ? rate_items : done);
  const double rate = elapsed > 0 ? counted / elapsed : 0;
  const double per_done = done > 0 ? elapsed / static_cast<double>(done) : -1;
  const double eta = done > 0 ? per_done * static_cast<double>(total_ - done) : -1;
  const int width = 24;
  const int filled = total_ > 0 ? static_cast<int>(width * std::min<int64_t>(done, total_) / total_) : 0;
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  const std::string line = absl::StrFormat("%s %d/%d [%s] %.1f %s/s %s %s %s", label_, done, total_, bar, rate, unit_,
                                           final ? "took" : "ETA", FormatDuration(final ? elapsed : eta), text);
  if (tty_) {
    *out_ << '\r' << line << "\x1b[K";
    if (final) *out_ << '\n';
  } else {
    *out_ << line << '\n';
  }
  out_->flush();
}

}  // namespace veriface
