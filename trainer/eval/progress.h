#pragma once
// A progress line on stderr: count, percentage, rate and time left. On a terminal it redraws one line;
// into a file (nohup, CI logs) it writes a new line at most every few seconds.

#include <chrono>
#include <cstdint>
#include <string>

namespace veriface {

class Progress {
 public:
  Progress(std::string what, int64_t total, std::string unit, bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` items so far (monotonic).
  void Update(int64_t done);
  // Prints the final line (total time and mean rate) once.
  void Finish();

  // "1h02m", "3m07s", "12s".
  static std::string FormatDuration(double seconds);

 private:
  void Print(bool final_line);

  std::string what_;
  int64_t total_;
  std::string unit_;
  bool enabled_;
  bool terminal_;
  bool finished_ = false;
  int64_t done_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace veriface
