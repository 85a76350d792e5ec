#include "core/serving/operating_point.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace veriface {

absl::StatusOr<double> FarOfOperatingPoint(const std::string& name, const std::string& field) {
  constexpr char kPrefix[] = "far_";
  double far = 0;
  if (!absl::StartsWith(name, kPrefix) || !absl::SimpleAtod(name.substr(sizeof(kPrefix) - 1), &far) ||
      !(far > 0 && far < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " '", name,
                                                   "' is not a far_<rate> operating point with a rate in (0, 1), "
                                                   "like far_1e-3"));
  }
  return far;
}

}  // namespace veriface
