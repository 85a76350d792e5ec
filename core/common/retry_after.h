#pragma once
// A refusal that says when to come back. An admission that refuses a call for want of room (a full set of
// call slots, an empty rate-limit bucket) attaches how long the caller should wait to its status, as a
// payload, so that the server can pass it on (the retry-after-ms trailer) without parsing the message.
// Clients that honour it stop resending refused calls at once, whose refusals would otherwise cost the
// capacity they protect.

#include <chrono>
#include <optional>

#include "absl/status/status.h"

namespace veriface {

// The status with `wait` attached (replacing any earlier hint). An OK status is returned unchanged.
absl::Status WithRetryAfter(absl::Status status, std::chrono::milliseconds wait);

// The hint attached by WithRetryAfter, if any.
std::optional<std::chrono::milliseconds> RetryAfter(const absl::Status& status);

}  // namespace veriface
