#pragma once
// Operating points named by their false accept rate ("far_1e-3"): the one place their names are read.

#include <string>

#include "absl/status/statusor.h"

namespace veriface {

// The FAR target a far_<rate> point's name states (far_1e-3 -> 0.001); INVALID_ARGUMENT, naming `field`,
// for any other name or a rate outside (0, 1).
absl::StatusOr<double> FarOfOperatingPoint(const std::string& name, const std::string& field);

}  // namespace veriface
