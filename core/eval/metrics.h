#pragma once
// Verification metrics on scored pairs: a pair of images has a similarity score (larger = more alike)
// and a truth (same person or not); a threshold t calls the pair "same" when score > t.
//
// Thresholds are always placed between scores (midpoints of neighbouring sorted scores, or 1 beyond the
// extremes), never on a score, so "score > t" and "score >= t" agree on the set they were chosen on.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface {

// True accept rate (same pairs called same) and false accept rate (different pairs called same).
struct Rates {
  double tar = 0;
  double far = 0;
};

struct RocPoint {
  double threshold = 0;  // "same" when score > threshold
  double far = 0;
  double tar = 0;
};

struct ThresholdChoice {
  double threshold = 0;
  double accuracy = 0;  // on the set it was chosen on
};

// A point where the false accept rate equals the false reject rate (1 - TAR), interpolated linearly
// between the two ROC points that straddle it.
struct EqualErrorRate {
  double rate = 0;
  double threshold = 0;
};

// The most permissive threshold whose false accept rate is at most `target_far`.
struct FarOperatingPoint {
  double target_far = 0;
  double threshold = 0;
  double tar = 0;
  double far = 0;  // achieved, <= target_far
  int64_t false_accepts = 0;
};

class VerificationScores {
 public:
  // INVALID_ARGUMENT when the sizes differ, a score is not finite, or either class is empty.
  static absl::StatusOr<VerificationScores> Create(std::vector<double> scores, std::vector<bool> same);

  size_t size() const { return scores_.size(); }
  int64_t num_same() const { return static_cast<int64_t>(same_sorted_.size()); }
  int64_t num_different() const { return static_cast<int64_t>(different_sorted_.size()); }
  const std::vector<double>& scores() const { return scores_; }
  const std::vector<bool>& same() const { return same_; }

  // Fraction of pairs classified correctly by "same when score > threshold".
  double AccuracyAt(double threshold) const;
  Rates RatesAt(double threshold) const;

  // The threshold that classifies the most pairs correctly. Candidates are the midpoints between
  // consecutive sorted scores plus one below and one above every score; when several candidates tie,
  // the middle one (index count/2 of them in ascending order) is taken, as the Python reference does.
  ThresholdChoice BestAccuracyThreshold() const;

  // From the strictest threshold (FAR 0, TAR 0) to the most lenient (1, 1), one point per distinct
  // score; FAR and TAR never decrease along it. Tied scores of both classes give a diagonal step.
  std::vector<RocPoint> Roc() const;
  // Area under Roc() by the trapezoid rule: the probability that a random same pair scores above a
  // random different pair, ties counting one half.
  double Auc() const;
  EqualErrorRate Eer() const;
  FarOperatingPoint AtFar(double target_far) const;

  // The pairs where keep[i] is true; INVALID_ARGUMENT when a class would be empty.
  absl::StatusOr<VerificationScores> Subset(const std::vector<bool>& keep) const;

 private:
  VerificationScores() = default;

  std::vector<double> scores_;
  std::vector<bool> same_;
  std::vector<double> same_sorted_;       // ascending
  std::vector<double> different_sorted_;  // ascending
};

struct FoldResult {
  int fold = 0;
  int64_t pairs = 0;
  double threshold = 0;  // chosen on the other folds (or fixed)
  double accuracy = 0;
  Rates rates;
};

struct CrossValidation {
  std::vector<FoldResult> folds;
  double mean_accuracy = 0;
  double std_accuracy = 0;        // population standard deviation over the folds
  double std_error_accuracy = 0;  // sample standard deviation / sqrt(folds)
  double mean_threshold = 0;
};

// The standard LFW protocol: for each fold k, the best-accuracy threshold of all pairs outside fold k
// is applied to the pairs of fold k. folds[i] is pair i's fold, 0 .. num_folds-1; at least two folds,
// each with pairs, and every training complement with both classes.
absl::StatusOr<CrossValidation> CrossValidate(const VerificationScores& scores, const std::vector<int>& folds);

// Every fold judged at one given threshold (e.g. one calibrated elsewhere).
absl::StatusOr<CrossValidation> EvaluateFoldsAt(const VerificationScores& scores, const std::vector<int>& folds,
                                                double threshold);

}  // namespace veriface
