#pragma once
// How a replica follows a gallery store that other replicas write too. Plain values, so that the server's
// configuration can hold them.

#include <chrono>

namespace veriface {

struct FollowOptions {
  std::chrono::milliseconds poll_interval{1000};  // the longest wait for a change nobody signalled
  std::chrono::milliseconds stale_after{5000};    // no successful sync for this long: may be stale
  // Between attempts while the store is unreachable: short, because a replica that is back must say so soon.
  std::chrono::milliseconds max_backoff{2000};
};

}  // namespace veriface
