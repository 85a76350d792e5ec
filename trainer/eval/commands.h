#pragma once
// The veriface-eval subcommands as library functions (the executable parses flags and calls these; the
// end-to-end test calls them directly).

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/metrics.h"

namespace veriface {

struct CommonEvalOptions {
  std::string model_dir = "models/default";
  std::string device = "cpu";  // "cpu", "cuda:N" or "auto"
  std::string lfw_dir;
  std::string cache_path;  // empty: no cache
  std::string tta;         // empty: the bundle's own test-time setting
  int threads = 2;
  int batch = 32;
  bool progress = true;
  std::string command_line;  // recorded in the results: DisplayCommandLine's, free of machine paths
};

struct LfwOptions {
  CommonEvalOptions common;
  std::string pairs_path;        // empty: <lfw_dir>/pairs.txt
  std::string train_pairs_path;  // optional: choose the threshold on these pairs (e.g. View 1 DevTrain)
  std::string out_json;          // optional
  std::string plots_dir;         // optional
};

struct CalibrateOptions {
  CommonEvalOptions common;
  std::string pairs_path;               // empty: <lfw_dir>/pairsDevTrain.txt
  std::string test_pairs_path;          // empty: <lfw_dir>/pairsDevTest.txt when it exists; "none": skip
  std::string default_operating_point;  // empty: keep the bundle's
  bool dry_run = false;                 // compute and print, leave model.json alone
};

// `veriface-eval lfw`: embeds the pairs' images and reports the protocol's numbers. With two or more
// folds: the standard cross-validation; with --train-pairs: the threshold from those pairs applied to
// these. Prints a summary to `out`, writes the JSON and plots when asked, and returns the JSON.
absl::StatusOr<nlohmann::json> RunLfw(const LfwOptions& options, std::ostream& out);

// `veriface-eval calibrate`: thresholds at the named operating points, chosen on the calibration pairs,
// written into the bundle's model.json (unless dry_run). Returns the calibration record.
absl::StatusOr<nlohmann::json> RunCalibrate(const CalibrateOptions& options, std::ostream& out);

// `veriface-eval pair`: every face in each image, the similarity of the two central faces and the
// decision at the bundle's default threshold.
absl::Status RunPair(const std::string& model_dir, const std::string& image_a, const std::string& image_b, int threads,
                     std::ostream& out, const std::string& device = "cpu");

// ROC (log FAR axis) and same/different similarity histograms with the threshold marked, as PNG files
// `roc.png` and `similarity.png` in `dir` (created if needed). `notes` go in a box on the ROC.
absl::Status WriteVerificationPlots(const VerificationScores& scores, double threshold, const std::string& title,
                                    const std::string& subtitle, const std::vector<std::string>& notes,
                                    const std::string& dir);

// `args` (argv) as the records keep the command: the tool's name without its folder, and every absolute path
// (an argument, or the value of --name=VALUE) through DisplayPath. Records then read the same on every machine
// that runs the tool from the project root.
std::string DisplayCommandLine(const std::vector<std::string>& args);

// The name plots give the data set of a pairs file: the folder holding it ("lfw" for
// ../shared/data/lfw/pairs.txt), so that a run on another face set is labelled with that set's name.
std::string DataSetName(const std::string& pairs_path);

// The default cache file: $VERIFACE_CACHE_DIR, else $XDG_CACHE_HOME/veriface, else ~/.cache/veriface,
// then "eval.sqlite".
std::string DefaultCachePath();

}  // namespace veriface
