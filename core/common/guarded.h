#pragma once
// The one place where exceptions from LibTorch, OpenCV and the standard library become statuses. Core's
// public functions return absl::Status / StatusOr; those that call into a library that throws wrap the
// call in Guarded() instead of writing their own try/catch.

#include <exception>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface {

// The status for an exception caught while doing `what` ("face detection", ...): INVALID_ARGUMENT for
// std::invalid_argument, RESOURCE_EXHAUSTED for std::bad_alloc, INTERNAL otherwise. The message is
// "what: <the exception's message>", with LibTorch's C++ backtrace left out.
absl::Status StatusFromException(const std::string& what, const std::exception_ptr& error);

// Runs `fn`, which returns absl::Status or absl::StatusOr<T>, and returns its result; an exception that
// escapes `fn` is returned as StatusFromException(what, ...).
template <typename Fn>
auto Guarded(const std::string& what, Fn&& fn) -> decltype(fn()) {
  static_assert(std::is_convertible_v<absl::Status, decltype(fn())>, "Guarded's function must return a status");
  try {
    return fn();
  } catch (...) {
    return StatusFromException(what, std::current_exception());
  }
}

}  // namespace veriface
