#pragma once
// Early-return helpers for absl::Status / absl::StatusOr, which Abseil 20220623 does not export.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define VF_CONCAT_INNER(a, b) a##b
#define VF_CONCAT(a, b) VF_CONCAT_INNER(a, b)

// VF_RETURN_IF_ERROR(expr): expr yields an absl::Status; return it from the caller unless it is ok.
#define VF_RETURN_IF_ERROR(expr)              \
  do {                                        \
    const ::absl::Status vf_status_ = (expr); \
    if (!vf_status_.ok()) return vf_status_;  \
  } while (false)

// VF_ASSIGN_OR_RETURN(lhs, expr): expr yields absl::StatusOr<T>; on error return its status,
// otherwise move the value into lhs (which may be a declaration, e.g. `auto x`).
#define VF_ASSIGN_OR_RETURN(lhs, expr) VF_ASSIGN_OR_RETURN_IMPL(VF_CONCAT(vf_statusor_, __LINE__), lhs, expr)
#define VF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
