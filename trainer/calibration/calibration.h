#pragma once
// A bundle's thresholds, chosen in one place for veriface-eval calibrate and veriface-train: the threshold
// at each named operating point, chosen on scored calibration pairs, and one record of how (model.json's
// `calibration`). The server reads only `thresholds` and `default_operating_point`; the record is for
// people, and for veriface-eval, which compares the test-time setting it names with its own.

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "core/eval/metrics.h"
#include "core/model/model_spec.h"

namespace veriface {

// The false accept rates with a named operating point ("far_1e-2", "far_1e-3"), besides "best_accuracy".
inline constexpr double kOperatingFars[] = {1e-2, 1e-3};

// Where the calibration scores came from.
struct CalibrationSource {
  std::string tool;       // "veriface-eval calibrate", "veriface-train"
  std::string set;        // the pairs, in words: "pairsDevTrain.txt in ../shared/data/lfw" (paths by DisplayPath)
  std::string test_time;  // the test-time setting the scores were made with (ModelSpec::TestTimeSpec())
};

struct Calibration {
  std::map<std::string, double> thresholds;  // operating point -> threshold, as written to model.json
  // {tool, set, pairs, same_pairs, different_pairs, test_time, score, method, far_resolution, results}; a
  // tool may add its own fields (veriface-eval: command, date, faces, held_out_check).
  nlohmann::json record;
};

// Thresholds at "best_accuracy" (the midpoint that classifies the most pairs correctly) and at each of
// kOperatingFars (the most lenient midpoint whose false accept rate is at most the target), rounded to six
// decimals; `record.results` says how each does on `scores`.
Calibration Calibrate(const VerificationScores& scores, const CalibrationSource& source);

// How `thresholds` do on `scores`: {name: {threshold, accuracy, tar, far, false_accepts}}, the shape of a
// calibration record's `results` (and of veriface-eval's check on held-out pairs).
nlohmann::json EvaluateThresholds(const VerificationScores& scores, const std::map<std::string, double>& thresholds);

// Writes `calibration` into `spec`: its thresholds (other operating points the spec has are kept), its
// record, and `default_operating_point` unless that is empty. INVALID_ARGUMENT, with `spec` unchanged,
// when the spec would then have no threshold for its default operating point.
absl::Status ApplyCalibration(const Calibration& calibration, const std::string& default_operating_point,
                              ModelSpec* spec);

// `v` rounded to `digits` decimals (non-finite values as they are): how the records keep their numbers
// readable.
double RoundDigits(double v, int digits = 6);

}  // namespace veriface
