#include "server/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace veriface::server {
namespace {

double BurstOf(const RateLimit& limit) { return limit.burst > 0 ? limit.burst : std::max(1.0, limit.per_second); }

}  // namespace

absl::StatusOr<std::map<std::string, RateLimit>> ParseKeyRateLimits(const std::string& text) {
  std::map<std::string, RateLimit> out;
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    const std::vector<std::string> name_value = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    const auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat("rate_limits.keys entry '", std::string(entry), "': ", why,
                                                     " (expected NAME=PER_SECOND or NAME=PER_SECOND:BURST)"));
    };
    if (name_value.size() != 2 || name_value[0].empty()) return bad("no NAME=");
    const std::vector<std::string> rate_burst = absl::StrSplit(name_value[1], ':');
    RateLimit limit;
    if (rate_burst.size() > 2 || !absl::SimpleAtod(rate_burst[0], &limit.per_second) || !(limit.per_second > 0) ||
        limit.per_second > 1e6) {
      return bad("the rate must be a number of calls per second in (0, 1e6]");
    }
    if (rate_burst.size() == 2 &&
        (!absl::SimpleAtod(rate_burst[1], &limit.burst) || !(limit.burst >= 1) || limit.burst > 1e6)) {
      return bad("the burst must be a number of calls in [1, 1e6]");
    }
    if (!out.emplace(name_value[0], limit).second) return bad("the key is named twice");
  }
  return out;
}

RateLimiter::RateLimiter(RateLimits limits) : limits_(std::move(limits)) {}

const RateLimit& RateLimiter::LimitOf(const std::string& key_name) const {
  const auto it = limits_.keys.find(key_name);
  return it == limits_.keys.end() ? limits_.all : it->second;
}

RateLimiter::Decision RateLimiter::Take(const std::string& key_name, Clock::time_point now) {
  Decision decision;
  decision.limit = LimitOf(key_name);
  if (decision.limit.per_second <= 0) return decision;
  const double burst = BurstOf(decision.limit);
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, fresh] = buckets_.try_emplace(key_name, Bucket{burst, now});
  Bucket& bucket = it->second;
  if (!fresh) {
    const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
    bucket.tokens = std::min(burst, bucket.tokens + std::max(0.0, elapsed) * decision.limit.per_second);
    bucket.updated = std::max(bucket.updated, now);
  }
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return decision;
  }
  decision.admitted = false;
  decision.retry_after = std::chrono::milliseconds(
      static_cast<int64_t>(std::ceil((1 - bucket.tokens) / decision.limit.per_second * 1000)));
  return decision;
}

}  // namespace veriface::server
