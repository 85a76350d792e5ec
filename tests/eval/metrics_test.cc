// Verification metrics on small score sets whose answers are worked out by hand in the comments.

#include "core/eval/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace veriface {
namespace {

using ::testing::DoubleNear;
using ::testing::HasSubstr;

// same {0.9, 0.8, 0.4}, different {0.7, 0.3}.
VerificationScores Small() {
  return *VerificationScores::Create({0.9, 0.7, 0.8, 0.3, 0.4}, {true, false, true, false, true});
}

TEST(VerificationScores, RejectsBadInput) {
  EXPECT_THAT(VerificationScores::Create({0.1, 0.2}, {true}).status().message(), HasSubstr("2 scores but 1"));
  EXPECT_THAT(VerificationScores::Create({0.1, NAN}, {true, false}).status().message(), HasSubstr("not a finite"));
  EXPECT_THAT(VerificationScores::Create({0.1, 0.2}, {true, true}).status().message(),
              HasSubstr("2 same and 0 different"));
  EXPECT_FALSE(VerificationScores::Create({}, {}).ok());
}

TEST(VerificationScores, RatesAndAccuracyAtAThreshold) {
  const VerificationScores s = Small();
  // At 0.75: same 0.9, 0.8 accepted (2/3), different none (0/2); correct: 2 + 2 = 4 of 5.
  EXPECT_DOUBLE_EQ(s.RatesAt(0.75).tar, 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.RatesAt(0.75).far, 0.0);
  EXPECT_DOUBLE_EQ(s.AccuracyAt(0.75), 0.8);
  // "same when score > t": a score equal to the threshold is rejected.
  EXPECT_DOUBLE_EQ(s.RatesAt(0.7).far, 0.0);
  EXPECT_DOUBLE_EQ(s.RatesAt(0.69).far, 0.5);
}

TEST(VerificationScores, BestAccuracyThresholdTakesTheMiddleOfTies) {
  // Candidates -0.7, 0.35, 0.55, 0.75, 0.85, 1.9 classify 3, 4, 3, 4, 3, 2 pairs correctly; the best two
  // are 0.35 and 0.75 and the middle one (index 2/2 = 1) is 0.75.
  const ThresholdChoice c = Small().BestAccuracyThreshold();
  EXPECT_DOUBLE_EQ(c.threshold, 0.75);
  EXPECT_DOUBLE_EQ(c.accuracy, 0.8);
}

TEST(VerificationScores, BestAccuracyThresholdOfSeparableScoresSplitsThem) {
  const auto s = *VerificationScores::Create({0.2, 0.9, 0.4, 0.6}, {false, true, false, true});
  // Only the candidate between 0.4 and 0.6 is perfect.
  EXPECT_DOUBLE_EQ(s.BestAccuracyThreshold().threshold, 0.5);
  EXPECT_DOUBLE_EQ(s.BestAccuracyThreshold().accuracy, 1.0);
}

TEST(VerificationScores, RocStepsThroughEveryDistinctScore) {
  const std::vector<RocPoint> roc = Small().Roc();
  ASSERT_EQ(roc.size(), 6u);
  const double far[] = {0, 0, 0, 0.5, 0.5, 1};
  const double tar[] = {0, 1.0 / 3, 2.0 / 3, 2.0 / 3, 1, 1};
  const double thr[] = {1.9, 0.85, 0.75, 0.55, 0.35, -0.7};
  for (size_t i = 0; i < roc.size(); ++i) {
    EXPECT_DOUBLE_EQ(roc[i].far, far[i]) << i;
    EXPECT_DOUBLE_EQ(roc[i].tar, tar[i]) << i;
    EXPECT_NEAR(roc[i].threshold, thr[i], 1e-12) << i;
  }
}

TEST(VerificationScores, AucCountsOrderedPairs) {
  // Same-over-different orderings: 0.9 beats both, 0.8 both, 0.4 one: 5 of 6.
  EXPECT_NEAR(Small().Auc(), 5.0 / 6, 1e-12);
  // Ties count one half: same {0.5, 0.5} vs different {0.5, 0.2}: (0.5 + 1 + 0.5 + 1) / 4.
  const auto tied = *VerificationScores::Create({0.5, 0.5, 0.5, 0.2}, {true, true, false, false});
  EXPECT_NEAR(tied.Auc(), 0.75, 1e-12);
  const auto perfect = *VerificationScores::Create({0.9, 0.1}, {true, false});
  EXPECT_DOUBLE_EQ(perfect.Auc(), 1.0);
  const auto reversed = *VerificationScores::Create({0.1, 0.9}, {true, false});
  EXPECT_DOUBLE_EQ(reversed.Auc(), 0.0);
}

TEST(VerificationScores, EqualErrorRateIsInterpolatedWhereFarMeetsFrr) {
  // far - frr is -1/3 at (far 0, tar 2/3, t 0.75) and +1/6 at (far 1/2, tar 2/3, t 0.55): two thirds of
  // the way along, FAR = FRR = 1/3 at t = 0.75 - (2/3) * 0.2.
  const EqualErrorRate eer = Small().Eer();
  EXPECT_NEAR(eer.rate, 1.0 / 3, 1e-12);
  EXPECT_NEAR(eer.threshold, 0.75 - 0.2 * 2 / 3, 1e-12);
  const auto perfect = *VerificationScores::Create({0.9, 0.8, 0.2, 0.1}, {true, true, false, false});
  EXPECT_NEAR(perfect.Eer().rate, 0.0, 1e-12);
}

TEST(VerificationScores, TarAtFarTakesTheMostPermissiveAllowedThreshold) {
  const VerificationScores s = Small();
  const FarOperatingPoint zero = s.AtFar(0.0);
  EXPECT_DOUBLE_EQ(zero.tar, 2.0 / 3);
  EXPECT_DOUBLE_EQ(zero.far, 0.0);
  EXPECT_DOUBLE_EQ(zero.threshold, 0.75);
  EXPECT_EQ(zero.false_accepts, 0);
  EXPECT_DOUBLE_EQ(s.AtFar(0.49).tar, 2.0 / 3);
  const FarOperatingPoint half = s.AtFar(0.5);
  EXPECT_DOUBLE_EQ(half.tar, 1.0);
  EXPECT_DOUBLE_EQ(half.far, 0.5);
  EXPECT_NEAR(half.threshold, 0.35, 1e-12);
  EXPECT_EQ(half.false_accepts, 1);
}

TEST(VerificationScores, TarAtFarOneInAThousand) {
  // 1000 different pairs at 0.000 .. 0.999 and 10 same pairs at 0.9905 .. 0.9995 (one per 0.001).
  std::vector<double> scores;
  std::vector<bool> same;
  for (int i = 0; i < 1000; ++i) {
    scores.push_back(i / 1000.0);
    same.push_back(false);
  }
  for (int i = 0; i < 10; ++i) {
    scores.push_back(0.9905 + i / 1000.0);
    same.push_back(true);
  }
  const auto s = *VerificationScores::Create(scores, same);
  // FAR <= 1e-3 allows one false accept (0.999), so the threshold may drop to just above 0.998, the
  // second highest different pair: between 0.998 and 0.9985. The same pairs above it are 0.9995 and
  // 0.9985: TAR 2/10.
  const FarOperatingPoint op = s.AtFar(1e-3);
  EXPECT_EQ(op.false_accepts, 1);
  EXPECT_DOUBLE_EQ(op.far, 1e-3);
  EXPECT_DOUBLE_EQ(op.tar, 0.2);
  EXPECT_NEAR(op.threshold, (0.9985 + 0.998) / 2, 1e-12);
  // FAR 1e-2 allows ten: the threshold sits between 0.989 and 0.990, below every same pair.
  EXPECT_DOUBLE_EQ(s.AtFar(1e-2).tar, 1.0);
  EXPECT_EQ(s.AtFar(1e-2).false_accepts, 10);
}

TEST(VerificationScores, SubsetKeepsMarkedPairs) {
  const auto sub = Small().Subset({true, true, false, false, false});
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->size(), 2u);
  EXPECT_EQ(sub->num_same(), 1);
  EXPECT_THAT(Small().Subset({true, false, true, false, false}).status().message(), HasSubstr("0 different"));
  EXPECT_FALSE(Small().Subset({true}).ok());
}

// Three folds, one same and one different pair each:
//   fold 0: same 0.9, different 0.1;  fold 1: same 0.8, different 0.6;  fold 2: same 0.55, different 0.7.
VerificationScores ThreeFolds() {
  return *VerificationScores::Create({0.9, 0.1, 0.8, 0.6, 0.55, 0.7}, {true, false, true, false, true, false});
}
const std::vector<int> kFolds = {0, 0, 1, 1, 2, 2};

TEST(CrossValidate, ChoosesEachThresholdOnTheOtherFolds) {
  // Fold 0 tested at the threshold of folds 1+2: candidates -0.45 .. 1.8 give 2, 1, 2, 3, 2 correct, so
  // 0.75: both fold-0 pairs right.
  // Fold 1 at folds 0+2's: 0.325 and 0.8 tie at 3 correct; the middle of the two is 0.8, which rejects
  // the same pair at 0.8 (not > 0.8): 1 of 2.
  // Fold 2 at folds 0+1's: 0.7 (4 of 4); the same pair at 0.55 is rejected, the different one at 0.7 is
  // not accepted: 1 of 2.
  const auto cv = CrossValidate(ThreeFolds(), kFolds);
  ASSERT_TRUE(cv.ok()) << cv.status();
  ASSERT_EQ(cv->folds.size(), 3u);
  EXPECT_DOUBLE_EQ(cv->folds[0].threshold, 0.75);
  EXPECT_DOUBLE_EQ(cv->folds[1].threshold, 0.8);
  EXPECT_NEAR(cv->folds[2].threshold, 0.7, 1e-12);
  EXPECT_DOUBLE_EQ(cv->folds[0].accuracy, 1.0);
  EXPECT_DOUBLE_EQ(cv->folds[1].accuracy, 0.5);
  EXPECT_DOUBLE_EQ(cv->folds[2].accuracy, 0.5);
  EXPECT_EQ(cv->folds[1].pairs, 2);
  EXPECT_DOUBLE_EQ(cv->folds[1].rates.tar, 0.0);
  EXPECT_DOUBLE_EQ(cv->folds[1].rates.far, 0.0);
  EXPECT_NEAR(cv->mean_accuracy, 2.0 / 3, 1e-12);
  // Population std: deviations +1/3, -1/6, -1/6 -> sqrt((1/9 + 1/36 + 1/36) / 3) = sqrt(1/18).
  EXPECT_NEAR(cv->std_accuracy, std::sqrt(1.0 / 18), 1e-12);
  // Standard error: sample std sqrt((1/6) / 2) over sqrt(3) = 1/6.
  EXPECT_NEAR(cv->std_error_accuracy, 1.0 / 6, 1e-12);
  EXPECT_NEAR(cv->mean_threshold, 0.75, 1e-12);
}

TEST(CrossValidate, RejectsBadFolds) {
  EXPECT_THAT(CrossValidate(ThreeFolds(), {0, 0, 1}).status().message(), HasSubstr("3 fold numbers for 6"));
  EXPECT_THAT(CrossValidate(ThreeFolds(), {0, 0, 2, 2, 2, 2}).status().message(), HasSubstr("fold 1"));
  EXPECT_THAT(CrossValidate(ThreeFolds(), {0, 0, 0, 0, 0, 0}).status().message(), HasSubstr("two folds"));
  EXPECT_THAT(CrossValidate(ThreeFolds(), {0, 0, 1, 1, -1, 2}).status().message(), HasSubstr("start at 0"));
  // Without fold 0 the other folds hold no different pair, so no threshold can be chosen for fold 0.
  const auto s = *VerificationScores::Create({0.9, 0.1, 0.8, 0.7}, {true, false, true, true});
  EXPECT_THAT(CrossValidate(s, {0, 0, 1, 1}).status().message(), HasSubstr("other than 0"));
}

TEST(EvaluateFoldsAt, JudgesEveryFoldAtOneThreshold) {
  // At 0.65: fold 0 right twice, fold 1 right twice, fold 2 wrong twice (0.55 rejected, 0.7 accepted).
  const auto cv = EvaluateFoldsAt(ThreeFolds(), kFolds, 0.65);
  ASSERT_TRUE(cv.ok()) << cv.status();
  EXPECT_DOUBLE_EQ(cv->folds[0].accuracy, 1.0);
  EXPECT_DOUBLE_EQ(cv->folds[1].accuracy, 1.0);
  EXPECT_DOUBLE_EQ(cv->folds[2].accuracy, 0.0);
  EXPECT_DOUBLE_EQ(cv->folds[2].rates.far, 1.0);
  EXPECT_NEAR(cv->mean_accuracy, 2.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(cv->mean_threshold, 0.65);
}

}  // namespace
}  // namespace veriface
