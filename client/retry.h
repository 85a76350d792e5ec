#pragma once
// Retrying writes safely. Enroll and DeleteIdentity carry a request id, chosen once per request and sent
// again with every retry of it, so that the server answers a retry of a write it already did with that
// first result (`replayed`) instead of doing it twice. Only UNAVAILABLE is retried: the server was
// unreachable, still loading, shutting down, or could not reach its gallery's database; any other code
// would come back the same.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace veriface::client {

struct RetryPolicy {
  int retries = 3;  // attempts after the first; 0: never retry
  std::chrono::milliseconds first_backoff{250};
  std::chrono::milliseconds max_backoff{4000};
};

// 128 random bits as 32 lowercase hex digits, from std::random_device (not a seeded generator, so that
// two clients started at the same moment cannot pick the same id).
std::string NewRequestId();

// The wait before retry `retry` (1 for the first): first_backoff doubled each time, at most max_backoff.
std::chrono::milliseconds Backoff(const RetryPolicy& policy, int retry);

bool IsRetryable(const grpc::Status& status);

// The wait a refusal asked for (its retry-after-ms trailer: a rate limit or a server at its limit of calls
// in progress), once the call has finished; none when it gave no hint.
std::optional<std::chrono::milliseconds> RetryAfter(const grpc::ClientContext& context);

// Calls `attempt` until it returns a status that is not retryable or `policy.retries` retries are spent,
// sleeping Backoff() before each retry after telling `on_retry` (which may be empty) about it. Returns the
// last attempt's status.
using RetryNotice = std::function<void(int retry, const grpc::Status& failed, std::chrono::milliseconds wait)>;
grpc::Status WithRetries(const RetryPolicy& policy, const std::function<grpc::Status()>& attempt,
                         const RetryNotice& on_retry = nullptr);

}  // namespace veriface::client
