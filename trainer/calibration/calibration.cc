#include "trainer/calibration/calibration.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace veriface {
namespace {

using nlohmann::json;

// "far_1e-3" for a power of ten, as model.json names its operating points.
std::string FarName(double far) {
  const double e = std::round(std::log10(far));
  if (std::abs(std::pow(10.0, e) - far) < far * 1e-9) return absl::StrFormat("far_1e%d", static_cast<int>(e));
  return absl::StrFormat("far_%g", far);
}

}  // namespace

double RoundDigits(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::isfinite(v) ? std::round(v * f) / f : v;
}

json EvaluateThresholds(const VerificationScores& scores, const std::map<std::string, double>& thresholds) {
  json out = json::object();
  for (const auto& [name, t] : thresholds) {
    const Rates r = scores.RatesAt(t);
    out[name] = {{"threshold", t},
                 {"accuracy", RoundDigits(scores.AccuracyAt(t))},
                 {"tar", RoundDigits(r.tar)},
                 {"far", RoundDigits(r.far)},
                 {"false_accepts", std::llround(r.far * static_cast<double>(scores.num_different()))}};
  }
  return out;
}

Calibration Calibrate(const VerificationScores& scores, const CalibrationSource& source) {
  Calibration c;
  // The thresholds as model.json keeps them; the results below are those of these rounded values, the ones
  // that are served.
  c.thresholds["best_accuracy"] = RoundDigits(scores.BestAccuracyThreshold().threshold);
  for (const double far : kOperatingFars) c.thresholds[FarName(far)] = RoundDigits(scores.AtFar(far).threshold);
  const auto different = static_cast<double>(scores.num_different());
  std::vector<std::string> allowed;
  for (const double far : kOperatingFars) {
    allowed.push_back(absl::StrFormat("FAR %g allows %d", far, static_cast<int64_t>(std::floor(far * different))));
  }
  c.record = {
      {"tool", source.tool},
      {"set", source.set},
      {"pairs", scores.size()},
      {"same_pairs", scores.num_same()},
      {"different_pairs", scores.num_different()},
      {"test_time", source.test_time},
      {"score", "cosine similarity of unit-length embeddings; match when it is above the threshold"},
      {"method",
       {{"best_accuracy",
         "the midpoint between sorted scores that classifies the most calibration pairs correctly (middle of ties)"},
        {"far", absl::StrCat("the lowest midpoint threshold whose false accept rate on the ", scores.num_different(),
                             " different pairs is at most the target (", absl::StrJoin(allowed, ", "),
                             " false accepts here: coarse on few pairs)")}}},
      {"far_resolution", 1.0 / different},
      {"results", EvaluateThresholds(scores, c.thresholds)}};
  return c;
}

absl::Status ApplyCalibration(const Calibration& calibration, const std::string& default_operating_point,
                              ModelSpec* spec) {
  std::map<std::string, double> thresholds = spec->thresholds;
  for (const auto& [name, t] : calibration.thresholds) thresholds[name] = t;
  const std::string point = default_operating_point.empty() ? spec->default_operating_point : default_operating_point;
  if (!thresholds.count(point)) {
    std::vector<std::string> names;
    for (const auto& [name, t] : thresholds) names.push_back(name);
    return absl::InvalidArgumentError(
        absl::StrCat("unknown operating point '", point, "'; there are thresholds for ", absl::StrJoin(names, ", ")));
  }
  spec->thresholds = std::move(thresholds);
  spec->default_operating_point = point;
  spec->calibration = calibration.record;
  return absl::OkStatus();
}

}  // namespace veriface
