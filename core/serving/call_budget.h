#pragma once
// The budget of one call: when it must be done by, and how to tell that its caller has gone. The server
// fills it from the gRPC context; in-process callers (benchmarks, tests) leave it unbounded.

#include <chrono>
#include <functional>

namespace veriface {

struct CallBudget {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::function<bool()> cancelled;  // may be empty
};

}  // namespace veriface
