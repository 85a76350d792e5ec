// The triplet loss and its mining on hand-made embeddings whose answers are worked out by hand in the
// comments: which triplets are taken, which are active, and the loss value.

#include "trainer/training/triplet_loss.h"

#include <gtest/gtest.h>

namespace veriface {
namespace {

torch::Tensor Labels(std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64); }

// Two people in 2-D. Squared distances:
//   a0=(0,0) a1=(1,0) [person 0]; b0=(0,2) b1=(3,0) [person 1]
//   d(a0,a1)=1  d(a0,b0)=4  d(a0,b1)=9  d(a1,b0)=5  d(a1,b1)=4  d(b0,b1)=13
torch::Tensor TwoPeople() { return torch::tensor({0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 3.0, 0.0}).view({4, 2}); }
torch::Tensor TwoPeopleLabels() { return Labels({0, 0, 1, 1}); }

TEST(PairwiseDistancesTest, SquaredAndEuclidean) {
  const auto d2 = PairwiseDistances(TwoPeople().to(torch::kFloat64), TripletDistance::kSquared);
  const auto expected =
      torch::tensor({0., 1., 4., 9., 1., 0., 5., 4., 4., 5., 0., 13., 9., 4., 13., 0.}, torch::kFloat64).view({4, 4});
  EXPECT_TRUE(torch::allclose(d2, expected));
  const auto d = PairwiseDistances(TwoPeople().to(torch::kFloat64), TripletDistance::kEuclidean);
  EXPECT_TRUE(torch::allclose(d, expected.sqrt()));
}

TEST(TripletLossTest, BatchHardPicksFarthestPositiveAndNearestNegative) {
  // margin 2: a0: 1 - min(4, 9) + 2 = -1 -> 0;  a1: 1 - min(5, 4) + 2 = -1 -> 0;
  //           b0: 13 - min(4, 5) + 2 = 11;      b1: 13 - min(9, 4) + 2 = 11.   mean 22 / 4 = 5.5
  TripletLossOptions o;
  o.mining = Mining::kBatchHard;
  o.margin = 2;
  const auto r = TripletLoss(TwoPeople(), TwoPeopleLabels(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->triplets, 4);
  EXPECT_EQ(r->active, 2);
  EXPECT_DOUBLE_EQ(r->active_fraction(), 0.5);
  EXPECT_NEAR(r->loss.item<double>(), 5.5, 1e-5);

  // margin 4 makes every anchor active: (1 + 1 + 13 + 13) / 4 = 7.
  o.margin = 4;
  const auto r4 = TripletLoss(TwoPeople(), TwoPeopleLabels(), o);
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r4->active, 4);
  EXPECT_NEAR(r4->loss.item<double>(), 7.0, 1e-5);
}

TEST(TripletLossTest, SemiHardFallsBackToTheEasiestNegative) {
  // Per positive pair, margin 2:
  //   (a0,a1): d_ap 1, negatives 4, 9 both farther -> nearest 4: 1 - 4 + 2 = -1 -> 0
  //   (a1,a0): d_ap 1, negatives 5, 4 -> 4: -1 -> 0
  //   (b0,b1): d_ap 13, negatives 4, 5, none farther -> the farthest, 5: 13 - 5 + 2 = 10
  //   (b1,b0): d_ap 13, negatives 9, 4, none farther -> 9: 13 - 9 + 2 = 6.   mean 16 / 4 = 4
  TripletLossOptions o;
  o.mining = Mining::kSemiHard;
  o.margin = 2;
  const auto r = TripletLoss(TwoPeople(), TwoPeopleLabels(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->triplets, 4);
  EXPECT_EQ(r->active, 2);
  EXPECT_NEAR(r->loss.item<double>(), 4.0, 1e-5);
}

// 1-D, Euclidean: a=0 and p=2 are one person; n1=-1, n2=3, n3=-5 are three others (no positives, so
// never anchors). From a: d_ap 2, negatives 1, 3, 5. From p: d_pa 2, negatives 3, 1, 7.
torch::Tensor Line() { return torch::tensor({0.0, 2.0, -1.0, 3.0, -5.0}).view({5, 1}); }
torch::Tensor LineLabels() { return Labels({0, 0, 1, 2, 3}); }

TEST(TripletLossTest, SemiHardTakesTheNearestNegativeFartherThanThePositive) {
  // a: farther than 2 are 3 and 5 -> 3: 2 - 3 + 1.5 = 0.5; p: farther are 3 and 7 -> 3: 0.5.
  TripletLossOptions o;
  o.mining = Mining::kSemiHard;
  o.margin = 1.5;
  o.distance = TripletDistance::kEuclidean;
  const auto r = TripletLoss(Line(), LineLabels(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->triplets, 2);
  EXPECT_EQ(r->active, 2);
  EXPECT_NEAR(r->loss.item<double>(), 0.5, 1e-5);
}

TEST(TripletLossTest, BatchHardGradientReachesOnlyTheChosenTriplets) {
  // a: 2 - 1 + 1.5 = 2.5 (negative n1); p: 2 - 1 + 1.5 = 2.5 (negative n2). n3 is never chosen.
  TripletLossOptions o;
  o.mining = Mining::kBatchHard;
  o.margin = 1.5;
  o.distance = TripletDistance::kEuclidean;
  auto x = Line().clone().set_requires_grad(true);
  const auto r = TripletLoss(x, LineLabels(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->triplets, 2);
  EXPECT_NEAR(r->loss.item<double>(), 2.5, 1e-5);
  r->loss.backward();
  const auto g = x.grad().view({-1});
  EXPECT_NE(g[2].item<double>(), 0.0);  // n1
  EXPECT_NE(g[3].item<double>(), 0.0);  // n2
  EXPECT_EQ(g[4].item<double>(), 0.0);  // n3
  // d(loss)/d(n1): the mean over 2 anchors of -d(a,n1)/dn1 = -(n1 - a)/|n1 - a| = 1, so 1/2.
  EXPECT_NEAR(g[2].item<double>(), 0.5, 1e-5);
}

TEST(TripletLossTest, RandomTripletsAreReproducibleAndValid) {
  TripletLossOptions o;
  o.mining = Mining::kRandom;
  o.margin = 1.5;
  o.distance = TripletDistance::kEuclidean;
  std::mt19937_64 rng1(7), rng2(7);
  const auto r1 = TripletLoss(Line(), LineLabels(), o, &rng1);
  const auto r2 = TripletLoss(Line(), LineLabels(), o, &rng2);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->triplets, 2);  // one per anchor with a positive
  EXPECT_EQ(r1->loss.item<double>(), r2->loss.item<double>());
  // Each anchor's loss is 2 - d_an + 1.5 for d_an in {1, 3, 5} (from a) or {3, 1, 7} (from p), so
  // each lies in {2.5, 0.5, 0}; the mean of two such values is a multiple of 0.25 in [0, 2.5].
  const double loss = r1->loss.item<double>();
  EXPECT_GE(loss, 0.0);
  EXPECT_LE(loss, 2.5 + 1e-6);
  EXPECT_NEAR(loss * 4, std::round(loss * 4), 1e-4);
  EXPECT_FALSE(TripletLoss(Line(), LineLabels(), o, nullptr).ok());
}

TEST(TripletLossTest, NoTripletGivesZeroLossWithAGradient) {
  auto x = torch::randn({3, 4}).set_requires_grad(true);
  for (Mining m : {Mining::kBatchHard, Mining::kSemiHard, Mining::kRandom}) {
    TripletLossOptions o;
    o.mining = m;
    std::mt19937_64 rng(1);
    const auto r = TripletLoss(x, Labels({0, 1, 2}), o, &rng);  // nobody has a positive
    ASSERT_TRUE(r.ok()) << MiningName(m);
    EXPECT_EQ(r->triplets, 0);
    EXPECT_EQ(r->loss.item<double>(), 0.0);
    r->loss.backward();
    EXPECT_EQ(x.grad().abs().sum().item<double>(), 0.0);
    x.mutable_grad().zero_();
  }
}

TEST(TripletLossTest, CoincidingEmbeddingsKeepAFiniteGradient) {
  auto x = torch::tensor({0.5, 0.5, 0.5, 0.5, -1.0, 0.0}).view({3, 2}).set_requires_grad(true);
  TripletLossOptions o;
  o.distance = TripletDistance::kEuclidean;
  const auto r = TripletLoss(x, Labels({0, 0, 1}), o);
  ASSERT_TRUE(r.ok());
  r->loss.backward();
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
}

// Batch-all over the 2-D example, margin 2. Valid triplets (a, p, n): from a0 and a1 two each, from
// b0 and b1 two each: 8. Losses: (a0,a1,b0) 1-4+2=-1, (a0,a1,b1) 1-9+2=-6, (a1,a0,b0) 1-5+2=-2,
// (a1,a0,b1) 1-4+2=-1, (b0,b1,a0) 13-4+2=11, (b0,b1,a1) 13-5+2=10, (b1,b0,a0) 13-9+2=6,
// (b1,b0,a1) 13-4+2=11. Active: 4, mean over them (11+10+6+11)/4 = 9.5.
TEST(TripletLossTest, BatchAllAveragesOverActiveTriplets) {
  TripletLossOptions o;
  o.mining = Mining::kBatchAll;
  o.margin = 2;
  const auto r = TripletLoss(TwoPeople(), TwoPeopleLabels(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->triplets, 8);
  EXPECT_EQ(r->active, 4);
  EXPECT_NEAR(r->loss.item<double>(), 9.5, 1e-5);
}

// A realistic batch (40 people x 4 images + 32 single images, 128-D unit embeddings) through every
// mining mode, forward and backward.
TEST(TripletLossTest, TrainingSizedBatchGivesFiniteLossAndGradient) {
  torch::manual_seed(0);
  std::vector<int64_t> labels;
  for (int64_t p = 0; p < 40; ++p) labels.insert(labels.end(), 4, p);
  for (int64_t p = 40; p < 72; ++p) labels.push_back(p);
  for (Mining m : {Mining::kBatchHard, Mining::kSemiHard, Mining::kBatchAll, Mining::kRandom}) {
    for (TripletDistance dist : {TripletDistance::kSquared, TripletDistance::kEuclidean}) {
      auto x = torch::randn({192, 128}, torch::requires_grad());
      const auto e = torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
      TripletLossOptions o;
      o.mining = m;
      o.distance = dist;
      std::mt19937_64 rng(3);
      const auto r = TripletLoss(e, Labels(labels), o, &rng);
      ASSERT_TRUE(r.ok()) << MiningName(m);
      EXPECT_GT(r->triplets, 0) << MiningName(m);
      EXPECT_TRUE(std::isfinite(r->loss.item<double>())) << MiningName(m);
      r->loss.backward();
      EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>()) << MiningName(m);
    }
  }
}

TEST(TripletLossTest, BadInputsAreErrors) {
  TripletLossOptions o;
  EXPECT_FALSE(TripletLoss(torch::zeros({4, 2}), Labels({0, 0, 1}), o).ok());
  EXPECT_FALSE(TripletLoss(torch::zeros({4}), Labels({0, 0, 1, 1}), o).ok());
  o.margin = -0.1;
  EXPECT_FALSE(TripletLoss(torch::zeros({4, 2}), Labels({0, 0, 1, 1}), o).ok());
  EXPECT_FALSE(ParseMining("hardest").ok());
  EXPECT_EQ(*ParseMining("semi-hard"), Mining::kSemiHard);
  EXPECT_FALSE(ParseTripletDistance("cosine").ok());
}

}  // namespace
}  // namespace veriface
