#include "trainer/training/fold_protocol.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/eval/metrics.h"
#include "trainer/calibration/calibration.h"
#include "trainer/training/face_dataset.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json FoldListJson(const std::vector<int>& folds) {
  json j = json::array();
  for (int f : folds) j.push_back(f + 1);
  return j;
}

json CrossValidationJson(const CrossValidation& cv) {
  json folds = json::array();
  for (const auto& f : cv.folds) {
    folds.push_back({{"fold", f.fold + 1}, {"accuracy", f.accuracy}, {"threshold", f.threshold}});
  }
  return {{"mean_accuracy", cv.mean_accuracy}, {"std_accuracy", cv.std_accuracy}, {"folds", folds}};
}

std::vector<bool> InFold(const std::vector<int>& pair_folds, int fold, bool inside) {
  std::vector<bool> keep;
  for (int f : pair_folds) keep.push_back((f == fold) == inside);
  return keep;
}

}  // namespace

absl::StatusOr<json> RunFoldProtocol(const FoldProtocolConfig& config) {
  VF_ASSIGN_OR_RETURN(const PeopleFile people, ReadPeopleFile(config.people_file));
  VF_ASSIGN_OR_RETURN(const PairsFile pairs, ReadPairsFile(config.pairs_file));
  const int num_folds = static_cast<int>(people.folds.size());
  if (num_folds < 2 || pairs.num_folds != num_folds) {
    return absl::InvalidArgumentError(absl::StrCat("the people file has ", num_folds, " fold(s) and the pairs file ",
                                                   pairs.num_folds, "; the protocol needs the same number, >= 2"));
  }
  std::vector<int> to_run = config.folds;
  if (to_run.empty()) {
    for (int k = 0; k < num_folds; ++k) to_run.push_back(k);
  }
  const std::vector<int> pair_folds = pairs.Folds();
  std::ostream* log = config.base.progress;

  json fold_results = json::array();
  std::unique_ptr<Trainer> last;  // the baseline reuses its source bundle and cache
  std::vector<double> oof_scores(pairs.pairs.size(), std::nan(""));
  std::vector<double> accuracies;
  for (const int k : to_run) {
    if (k < 0 || k >= num_folds) return absl::InvalidArgumentError(absl::StrCat("fold ", k + 1, " does not exist"));
    const auto start = std::chrono::steady_clock::now();
    TrainerConfig c = config.base;
    c.train_people = config.people_file;
    c.train_folds.clear();
    for (int f = 0; f < num_folds; ++f) {
      if (f != k) c.train_folds.push_back(f);
    }
    c.val_pairs.clear();  // nothing is chosen on the test fold: fixed epochs, last epoch kept
    c.val_folds.clear();
    c.held_out_people = PeopleInPairs(pairs, {k});
    c.work_dir = (fs::path(config.base.work_dir) / absl::StrFormat("fold-%02d", k + 1)).string();
    if (log) *log << absl::StrFormat("== fold %d of %d: training on the people of the other folds\n", k + 1, num_folds);
    VF_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(c));
    VF_ASSIGN_OR_RETURN(const TrainSummary summary, trainer->Run());
    if (!summary.finished) {
      return absl::FailedPreconditionError(
          absl::StrCat("fold ", k + 1, " stopped early (", summary.stop_reason, "); run again with --resume"));
    }
    VF_ASSIGN_OR_RETURN(const VerificationScores scores, trainer->ScorePairs(pairs));
    VF_ASSIGN_OR_RETURN(const VerificationScores others, scores.Subset(InFold(pair_folds, k, false)));
    VF_ASSIGN_OR_RETURN(const VerificationScores test, scores.Subset(InFold(pair_folds, k, true)));
    const ThresholdChoice chosen = others.BestAccuracyThreshold();
    const double accuracy = test.AccuracyAt(chosen.threshold);
    accuracies.push_back(accuracy);
    for (size_t i = 0; i < pairs.pairs.size(); ++i) {
      if (pair_folds[i] == k) oof_scores[i] = scores.scores()[i];
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fold_results.push_back({{"fold", k + 1},
                            {"accuracy", accuracy},
                            {"threshold", chosen.threshold},
                            {"auc", test.Auc()},
                            {"train_people", summary.train_people},
                            {"train_images", summary.train_images},
                            {"held_out_people", summary.held_out_people},
                            {"epochs", summary.history.size()},
                            {"final_loss", summary.history.empty() ? 0.0 : summary.history.back().loss},
                            {"seconds", seconds}});
    if (log) {
      *log << absl::StrFormat("fold %d: accuracy %.2f%% at threshold %.4f (chosen on the other folds)\n", k + 1,
                              100 * accuracy, chosen.threshold);
    }
    last = std::move(trainer);
  }
  if (last == nullptr) return absl::InvalidArgumentError("no fold to run");
  VF_ASSIGN_OR_RETURN(const VerificationScores source_scores, last->ScorePairsWithSource(pairs));
  VF_ASSIGN_OR_RETURN(const CrossValidation source_cv, CrossValidate(source_scores, pair_folds));

  double mean = 0, var = 0;
  for (double a : accuracies) mean += a / static_cast<double>(accuracies.size());
  for (double a : accuracies) var += (a - mean) * (a - mean) / static_cast<double>(accuracies.size());
  json result = {{"protocol",
                  "LFW View 2: for each fold k, a model trained on the people of the other folds of the people "
                  "file (fold k's pair people held out); threshold = best accuracy on the other folds' pairs "
                  "scored by that model; accuracy on fold k's pairs"},
                 {"people_file", DisplayPath(config.people_file)},
                 {"pairs_file", DisplayPath(config.pairs_file)},
                 {"folds_run", FoldListJson(to_run)},
                 {"folds", fold_results},
                 {"mean_accuracy", mean},
                 {"std_accuracy", std::sqrt(var)},
                 {"config", config.base.OutcomeJson()}};
  json baseline = CrossValidationJson(source_cv);
  baseline["description"] = "the source bundle as it is (its own head), standard protocol on the same faces";
  baseline["auc"] = source_scores.Auc();
  result["baseline"] = baseline;
  if (log) {
    *log << absl::StrFormat("trained: %.2f%% +- %.2f%%; source bundle: %.2f%% +- %.2f%%\n", 100 * mean,
                            100 * std::sqrt(var), 100 * source_cv.mean_accuracy, 100 * source_cv.std_accuracy);
  }
  if (to_run.size() != static_cast<size_t>(num_folds)) return result;

  // Every pair scored by the model that never saw its people: the calibration set of the final model.
  std::vector<bool> same;
  for (const auto& p : pairs.pairs) same.push_back(p.same);
  VF_ASSIGN_OR_RETURN(const VerificationScores oof, VerificationScores::Create(oof_scores, same));
  result["out_of_fold"] = {{"auc", oof.Auc()},
                           {"best_accuracy", oof.BestAccuracyThreshold().accuracy},
                           {"best_threshold", oof.BestAccuracyThreshold().threshold}};
  if (config.final_bundle.empty()) return result;

  TrainerConfig c = config.base;
  c.train_people = config.people_file;
  c.train_folds.clear();
  c.val_pairs.clear();
  c.val_folds.clear();
  c.held_out_people.clear();
  c.work_dir = (fs::path(config.base.work_dir) / "final").string();
  if (log) *log << "== final model: training on the people of every fold\n";
  VF_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(c));
  VF_ASSIGN_OR_RETURN(const TrainSummary summary, trainer->Run());
  if (!summary.finished) {
    return absl::FailedPreconditionError(
        absl::StrCat("the final model stopped early (", summary.stop_reason, "); run again with --resume"));
  }
  ModelSpec spec;
  const CalibrationSource source = {
      "veriface-train folds",
      absl::StrCat("out-of-fold scores of the ", pairs.pairs.size(), " pairs of ", DisplayPath(config.pairs_file),
                   " (each scored by the fold model that never saw its people)"),
      Trainer::kTestTime};
  VF_RETURN_IF_ERROR(ApplyCalibration(Calibrate(oof, source), "", &spec));
  spec.accuracy = {{"lfw_view2_fold_protocol",
                    {{"mean_accuracy", mean},
                     {"std_accuracy", std::sqrt(var)},
                     {"protocol", result["protocol"]},
                     {"folds", fold_results},
                     {"source_bundle_same_protocol", baseline},
                     {"note",
                      "measured on models trained without the test fold's people; this bundle's own head "
                      "was trained on every fold's people with the same settings"}}}};
  VF_ASSIGN_OR_RETURN(const ModelSpec written, trainer->WriteBundle(config.final_bundle, spec));
  result["final_bundle"] = {{"dir", DisplayPath(config.final_bundle)},
                            {"model_id", written.model_id},
                            {"thresholds", written.thresholds},
                            {"train_people", summary.train_people},
                            {"train_images", summary.train_images}};
  return result;
}

}  // namespace veriface
