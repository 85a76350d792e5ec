#include "core/eval/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace veriface {
namespace {

// Count of values in an ascending vector that are > t.
int64_t CountAbove(const std::vector<double>& ascending, double t) {
  return static_cast<int64_t>(ascending.end() - std::upper_bound(ascending.begin(), ascending.end(), t));
}

absl::Status CheckFolds(size_t n, const std::vector<int>& folds, int* num_folds) {
  if (folds.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("got ", folds.size(), " fold numbers for ", n, " pairs"));
  }
  int k = 0;
  for (const int f : folds) {
    if (f < 0) return absl::InvalidArgumentError(absl::StrCat("fold numbers start at 0, got ", f));
    k = std::max(k, f + 1);
  }
  std::vector<int64_t> counts(static_cast<size_t>(k), 0);
  for (const int f : folds) ++counts[static_cast<size_t>(f)];
  for (int f = 0; f < k; ++f) {
    if (counts[static_cast<size_t>(f)] == 0) {
      return absl::InvalidArgumentError(absl::StrCat("fold ", f, " of 0..", k - 1, " has no pairs"));
    }
  }
  *num_folds = k;
  return absl::OkStatus();
}

void Summarise(CrossValidation* cv) {
  const double k = static_cast<double>(cv->folds.size());
  double sum = 0, sum_t = 0;
  for (const FoldResult& f : cv->folds) {
    sum += f.accuracy;
    sum_t += f.threshold;
  }
  cv->mean_accuracy = sum / k;
  cv->mean_threshold = sum_t / k;
  double ss = 0;
  for (const FoldResult& f : cv->folds) ss += (f.accuracy - cv->mean_accuracy) * (f.accuracy - cv->mean_accuracy);
  cv->std_accuracy = std::sqrt(ss / k);
  cv->std_error_accuracy = k > 1 ? std::sqrt(ss / (k - 1)) / std::sqrt(k) : 0.0;
}

// Fold `fold` of the pairs judged at `threshold`. A fold may hold one class only: its accuracy is still
// defined, the rate of the missing class is NaN.
FoldResult JudgeFold(const VerificationScores& scores, const std::vector<int>& folds, int fold, double threshold) {
  FoldResult r;
  r.fold = fold;
  r.threshold = threshold;
  int64_t same = 0, different = 0, accepted_same = 0, accepted_different = 0;
  for (size_t i = 0; i < folds.size(); ++i) {
    if (folds[i] != fold) continue;
    const bool accept = scores.scores()[i] > threshold;
    if (scores.same()[i]) {
      ++same;
      accepted_same += accept;
    } else {
      ++different;
      accepted_different += accept;
    }
  }
  r.pairs = same + different;
  r.accuracy = static_cast<double>(accepted_same + different - accepted_different) / static_cast<double>(r.pairs);
  r.rates.tar = same > 0 ? static_cast<double>(accepted_same) / static_cast<double>(same) : std::nan("");
  r.rates.far = different > 0 ? static_cast<double>(accepted_different) / static_cast<double>(different) : std::nan("");
  return r;
}

}  // namespace

absl::StatusOr<VerificationScores> VerificationScores::Create(std::vector<double> scores, std::vector<bool> same) {
  if (scores.size() != same.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", scores.size(), " scores but ", same.size(), " same/different labels"));
  }
  VerificationScores v;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      return absl::InvalidArgumentError(absl::StrCat("score ", i, " is not a finite number (", scores[i], ")"));
    }
    (same[i] ? v.same_sorted_ : v.different_sorted_).push_back(scores[i]);
  }
  if (v.same_sorted_.empty() || v.different_sorted_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("need both same and different pairs, got ", v.same_sorted_.size(),
                                                   " same and ", v.different_sorted_.size(), " different"));
  }
  std::sort(v.same_sorted_.begin(), v.same_sorted_.end());
  std::sort(v.different_sorted_.begin(), v.different_sorted_.end());
  v.scores_ = std::move(scores);
  v.same_ = std::move(same);
  return v;
}

Rates VerificationScores::RatesAt(double threshold) const {
  return {static_cast<double>(CountAbove(same_sorted_, threshold)) / static_cast<double>(num_same()),
          static_cast<double>(CountAbove(different_sorted_, threshold)) / static_cast<double>(num_different())};
}

double VerificationScores::AccuracyAt(double threshold) const {
  const int64_t correct =
      CountAbove(same_sorted_, threshold) + num_different() - CountAbove(different_sorted_, threshold);
  return static_cast<double>(correct) / static_cast<double>(size());
}

ThresholdChoice VerificationScores::BestAccuracyThreshold() const {
  std::vector<double> s = scores_;
  std::sort(s.begin(), s.end());
  std::vector<double> candidates;
  candidates.reserve(s.size() + 1);
  candidates.push_back(s.front() - 1);
  for (size_t i = 0; i + 1 < s.size(); ++i) candidates.push_back((s[i] + s[i + 1]) / 2);
  candidates.push_back(s.back() + 1);

  std::vector<size_t> best;
  int64_t best_correct = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const double c = candidates[i];
    const int64_t correct = CountAbove(same_sorted_, c) + num_different() - CountAbove(different_sorted_, c);
    if (correct > best_correct) {
      best_correct = correct;
      best.clear();
    }
    if (correct == best_correct) best.push_back(i);
  }
  return {candidates[best[best.size() / 2]], static_cast<double>(best_correct) / static_cast<double>(size())};
}

std::vector<RocPoint> VerificationScores::Roc() const {
  std::vector<double> distinct = scores_;
  std::sort(distinct.begin(), distinct.end(), std::greater<>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<RocPoint> roc;
  roc.reserve(distinct.size() + 1);
  roc.push_back({distinct.front() + 1, 0.0, 0.0});
  for (size_t k = 0; k < distinct.size(); ++k) {
    const double t = k + 1 < distinct.size() ? (distinct[k] + distinct[k + 1]) / 2 : distinct[k] - 1;
    const Rates r = RatesAt(t);
    roc.push_back({t, r.far, r.tar});
  }
  return roc;
}

double VerificationScores::Auc() const {
  const std::vector<RocPoint> roc = Roc();
  double area = 0;
  for (size_t i = 1; i < roc.size(); ++i) area += (roc[i].far - roc[i - 1].far) * (roc[i].tar + roc[i - 1].tar) / 2;
  return area;
}

EqualErrorRate VerificationScores::Eer() const {
  const std::vector<RocPoint> roc = Roc();
  // far - frr rises from -1 at the first point to +1 at the last; find where it reaches 0.
  double prev_d = -1;
  for (size_t i = 1; i < roc.size(); ++i) {
    const double d = roc[i].far - (1 - roc[i].tar);
    if (d >= 0) {
      const RocPoint& a = roc[i - 1];
      const RocPoint& b = roc[i];
      const double alpha = d == prev_d ? 0.0 : -prev_d / (d - prev_d);
      return {a.far + alpha * (b.far - a.far), a.threshold + alpha * (b.threshold - a.threshold)};
    }
    prev_d = d;
  }
  return {roc.back().far, roc.back().threshold};  // not reached: the last point has d = +1
}

FarOperatingPoint VerificationScores::AtFar(double target_far) const {
  const std::vector<RocPoint> roc = Roc();
  // A tolerance of a fraction of one pair, so that FAR k/n compares equal to a target written as k/n.
  const double slack = 0.5 / static_cast<double>(num_different()) * 1e-6;
  FarOperatingPoint op;
  op.target_far = target_far;
  for (const RocPoint& p : roc) {
    if (p.far > target_far + slack) break;
    op.threshold = p.threshold;
    op.tar = p.tar;
    op.far = p.far;
  }
  op.false_accepts = std::llround(op.far * static_cast<double>(num_different()));
  return op;
}

absl::StatusOr<VerificationScores> VerificationScores::Subset(const std::vector<bool>& keep) const {
  if (keep.size() != size()) {
    return absl::InvalidArgumentError(absl::StrCat("subset mask has ", keep.size(), " entries for ", size(), " pairs"));
  }
  std::vector<double> s;
  std::vector<bool> t;
  for (size_t i = 0; i < size(); ++i) {
    if (!keep[i]) continue;
    s.push_back(scores_[i]);
    t.push_back(same_[i]);
  }
  return Create(std::move(s), std::move(t));
}

absl::StatusOr<CrossValidation> CrossValidate(const VerificationScores& scores, const std::vector<int>& folds) {
  int k = 0;
  VF_RETURN_IF_ERROR(CheckFolds(scores.size(), folds, &k));
  if (k < 2) return absl::InvalidArgumentError("cross-validation needs at least two folds");
  CrossValidation cv;
  for (int f = 0; f < k; ++f) {
    std::vector<bool> outside(folds.size());
    for (size_t i = 0; i < folds.size(); ++i) outside[i] = folds[i] != f;
    auto train = scores.Subset(outside);
    if (!train.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("the folds other than ", f, ": ", train.status().message()));
    }
    cv.folds.push_back(JudgeFold(scores, folds, f, train->BestAccuracyThreshold().threshold));
  }
  Summarise(&cv);
  return cv;
}

absl::StatusOr<CrossValidation> EvaluateFoldsAt(const VerificationScores& scores, const std::vector<int>& folds,
                                                double threshold) {
  int k = 0;
  VF_RETURN_IF_ERROR(CheckFolds(scores.size(), folds, &k));
  CrossValidation cv;
  for (int f = 0; f < k; ++f) cv.folds.push_back(JudgeFold(scores, folds, f, threshold));
  Summarise(&cv);
  return cv;
}

}  // namespace veriface
