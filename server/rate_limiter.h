#pragma once
// Per-caller request rate limits: one token bucket per API key name (every call of a server without keys
// shares the bucket of the empty name). A bucket holds up to `burst` calls and refills at `per_second`;
// a call that finds it empty is refused at once with RESOURCE_EXHAUSTED and told when a call would be
// admitted, before any of its work is done, so that one busy client cannot take the capacity of the rest.

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace veriface::server {

struct RateLimit {
  double per_second = 0;  // 0: unlimited
  double burst = 0;       // calls admitted at once; 0: max(1, per_second)
};

struct RateLimits {
  RateLimit all;                          // every key not named below
  std::map<std::string, RateLimit> keys;  // by API key name
};

// Reads "NAME=PER_SECOND[:BURST],..." (rate_limits.keys), e.g. "ingest=50:100,dashboard=5".
absl::StatusOr<std::map<std::string, RateLimit>> ParseKeyRateLimits(const std::string& text);

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Decision {
    bool admitted = true;
    std::chrono::milliseconds retry_after{0};  // when refused: the wait until a call would be admitted
    RateLimit limit;                           // the limit that applied
  };

  explicit RateLimiter(RateLimits limits);

  // Takes one call from `key_name`'s bucket. Thread-safe.
  Decision Take(const std::string& key_name, Clock::time_point now = Clock::now());

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  const RateLimit& LimitOf(const std::string& key_name) const;

  const RateLimits limits_;
  std::mutex mutex_;
  // One per key name that has called; names come from the server's own key list, so this stays small.
  std::map<std::string, Bucket> buckets_;
};

}  // namespace veriface::server
