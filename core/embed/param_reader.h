#pragma once
// Reads the `params` object of a backbone or head from model.json (or the trainer's flags) with
// range checks, so that a typo or an out-of-range value is a readable error, never a crash.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace veriface {

class ParamReader {
 public:
  // `what` names the component in messages, e.g. "mobilenetv2 params".
  ParamReader(const nlohmann::json& params, std::string what) : params_(params), what_(std::move(what)) {}

  // A number in [lo, hi], or `fallback` when the key is absent.
  absl::StatusOr<double> Number(const std::string& key, double fallback, double lo, double hi) {
    seen_.insert(key);
    if (!params_.is_object() || !params_.contains(key)) return fallback;
    const auto& v = params_[key];
    if (!v.is_number()) return Error(key, absl::StrCat("must be a number, not ", v.dump()));
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi)) return Error(key, absl::StrCat(x, " is outside [", lo, ", ", hi, "]"));
    return x;
  }

  absl::StatusOr<int64_t> Integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
    seen_.insert(key);
    if (!params_.is_object() || !params_.contains(key)) return fallback;
    const auto& v = params_[key];
    if (!v.is_number_integer()) return Error(key, absl::StrCat("must be an integer, not ", v.dump()));
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) return Error(key, absl::StrCat(x, " is outside [", lo, ", ", hi, "]"));
    return x;
  }

  absl::StatusOr<bool> Bool(const std::string& key, bool fallback) {
    seen_.insert(key);
    if (!params_.is_object() || !params_.contains(key)) return fallback;
    const auto& v = params_[key];
    if (!v.is_boolean()) return Error(key, absl::StrCat("must be true or false, not ", v.dump()));
    return v.get<bool>();
  }

  // A list of integers, each in [lo, hi].
  absl::StatusOr<std::vector<int64_t>> IntegerList(const std::string& key, std::vector<int64_t> fallback, int64_t lo,
                                                   int64_t hi) {
    seen_.insert(key);
    if (!params_.is_object() || !params_.contains(key)) return fallback;
    const auto& v = params_[key];
    if (!v.is_array()) return Error(key, absl::StrCat("must be a list of integers, not ", v.dump()));
    std::vector<int64_t> out;
    for (const auto& e : v) {
      if (!e.is_number_integer() || e.get<int64_t>() < lo || e.get<int64_t>() > hi) {
        return Error(key, absl::StrCat("entries must be integers in [", lo, ", ", hi, "], got ", v.dump()));
      }
      out.push_back(e.get<int64_t>());
    }
    return out;
  }

  // Call after reading every key: any other key is a typo or a parameter of another architecture.
  absl::Status CheckNoUnknownKeys() const {
    if (params_.is_null()) return absl::OkStatus();
    if (!params_.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(what_, ": expected an object, got ", params_.dump()));
    }
    for (const auto& item : params_.items()) {
      if (seen_.count(item.key()) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(what_, ": unknown parameter '", item.key(), "'"));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const std::string& key, const std::string& why) const {
    return absl::InvalidArgumentError(absl::StrCat(what_, ": '", key, "' ", why));
  }

  const nlohmann::json& params_;
  std::string what_;
  std::set<std::string> seen_;
};

}  // namespace veriface
