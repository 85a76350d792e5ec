#include "client/retry.h"

#include <algorithm>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace veriface::client {

std::string NewRequestId() {
  std::random_device device;
  std::string id;
  for (int i = 0; i < 4; ++i) absl::StrAppendFormat(&id, "%08x", static_cast<uint32_t>(device()));
  return id;
}

std::chrono::milliseconds Backoff(const RetryPolicy& policy, int retry) {
  std::chrono::milliseconds wait = policy.first_backoff;
  for (int i = 1; i < retry && wait < policy.max_backoff; ++i) wait *= 2;
  return std::min(wait, policy.max_backoff);
}

bool IsRetryable(const grpc::Status& status) { return status.error_code() == grpc::StatusCode::UNAVAILABLE; }

std::optional<std::chrono::milliseconds> RetryAfter(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto it = trailers.find("retry-after-ms");
  int64_t ms = 0;
  if (it == trailers.end() || !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms) ||
      ms < 0) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(ms);
}

grpc::Status WithRetries(const RetryPolicy& policy, const std::function<grpc::Status()>& attempt,
                         const RetryNotice& on_retry) {
  grpc::Status status = attempt();
  for (int retry = 1; retry <= policy.retries && IsRetryable(status); ++retry) {
    const std::chrono::milliseconds wait = Backoff(policy, retry);
    if (on_retry) on_retry(retry, status, wait);
    std::this_thread::sleep_for(wait);
    status = attempt();
  }
  return status;
}

}  // namespace veriface::client
