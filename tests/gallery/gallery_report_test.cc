// The gallery report over synthetic populations whose genuine and impostor scores are known in kind
// (each identity's templates are a random unit centre plus Gaussian noise, so genuine scores are high and
// impostor scores near 0): pair counts, rates against brute force, the FAR-target thresholds, the Wilson
// intervals, sampling caps and their notes, determinism, refusals, and SampleTemplates itself.

#include "core/gallery/gallery_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/gallery/collection.h"
#include "tests/gallery/gallery_testing.h"

namespace veriface::testing {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

std::string IdentityId(int i) {
  std::string id = std::to_string(i);
  return "person-" + std::string(4 - std::min<size_t>(4, id.size()), '0') + id;
}

// `noise` is the standard deviation of each component added to the identity's centre before the
// template is normalised: at 0.05 over 128 dimensions genuine scores are about 0.75, impostor scores
// about N(0, 1/128).
std::vector<float> NoisyUnit(std::mt19937& rng, const std::vector<float>& centre, double noise) {
  std::normal_distribution<double> normal(0, noise);
  std::vector<double> v(centre.begin(), centre.end());
  double sum = 0;
  for (double& x : v) {
    x += normal(rng);
    sum += x * x;
  }
  const double norm = std::sqrt(sum);
  std::vector<float> out;
  for (const double x : v) out.push_back(static_cast<float>(x / norm));
  return out;
}

IdentityState Identity(const std::string& id, const std::vector<std::vector<float>>& embeddings) {
  IdentityState state;
  state.record.identity_id = id;
  for (size_t t = 0; t < embeddings.size(); ++t) {
    TemplateRecord record;
    record.template_id = id + "/t" + std::to_string(t);
    record.identity_id = id;
    record.model_id = kModel;
    record.embedding = embeddings[t];
    state.templates.push_back(std::move(record));
  }
  return state;
}

std::unique_ptr<Collection> EmptyCollection() {
  return std::make_unique<Collection>(GalleryRecord{"site", 0, 0}, kModel, kDim, GalleryLimits{});
}

// templates[i] templates for identity i.
std::unique_ptr<Collection> Population(const std::vector<int>& templates, double noise = 0.05, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::vector<IdentityState> states;
  for (size_t i = 0; i < templates.size(); ++i) {
    const std::vector<float> centre = RandomUnit(rng);
    std::vector<std::vector<float>> embeddings;
    for (int t = 0; t < templates[i]; ++t) embeddings.push_back(NoisyUnit(rng, centre, noise));
    states.push_back(Identity(IdentityId(static_cast<int>(i)), embeddings));
  }
  auto collection = EmptyCollection();
  EXPECT_TRUE(collection->Load(std::move(states)).ok());
  return collection;
}

std::unique_ptr<Collection> Population(int identities, int templates_each, double noise = 0.05, uint32_t seed = 7) {
  return Population(std::vector<int>(static_cast<size_t>(identities), templates_each), noise, seed);
}

// Every pair's score, from the collection's own templates, summed in the order the report sums them.
struct BruteForce {
  std::vector<double> genuine;
  std::vector<double> impostor;  // both ascending
};

BruteForce AllPairs(const Collection& collection) {
  std::vector<std::pair<int, std::vector<float>>> rows;
  int identity = 0;
  const absl::StatusOr<IdentityPage> page = collection.List(1000, "");
  EXPECT_TRUE(page.ok() && page->next_page_token.empty());
  if (!page.ok()) return {};
  for (const IdentityInfo& info : page->identities) {
    const absl::StatusOr<IdentityState> state = collection.State(info.record.identity_id);
    EXPECT_TRUE(state.ok()) << state.status();
    if (!state.ok()) continue;
    for (const TemplateRecord& t : state->templates) rows.push_back({identity, t.embedding});
    ++identity;
  }
  BruteForce all;
  for (size_t a = 0; a < rows.size(); ++a) {
    for (size_t b = a + 1; b < rows.size(); ++b) {
      const double score = Dot(rows[a].second, rows[b].second);
      (rows[a].first == rows[b].first ? all.genuine : all.impostor).push_back(score);
    }
  }
  std::sort(all.genuine.begin(), all.genuine.end());
  std::sort(all.impostor.begin(), all.impostor.end());
  return all;
}

int64_t CountAtOrAbove(const std::vector<double>& scores, double t) {
  return std::count_if(scores.begin(), scores.end(), [t](double s) { return s >= t; });
}

int64_t Sum(const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); }

TEST(GalleryReportTest, ScoresEveryPairOfASmallGallery) {
  const auto gallery = Population(20, 4);
  const auto report = BuildGalleryReport(*gallery, {}, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->gallery, "site");
  EXPECT_EQ(report->identities, 20);
  EXPECT_EQ(report->templates, 80);
  EXPECT_EQ(report->sampled_identities, 20);
  EXPECT_EQ(report->sampled_templates, 80);
  EXPECT_EQ(report->identities_with_genuine_pairs, 20);
  EXPECT_EQ(report->genuine_pairs, 20 * 4 * 3 / 2);
  EXPECT_EQ(report->impostor_pairs, 80 * 79 / 2 - 20 * 4 * 3 / 2) << "every pair across identities";
  EXPECT_FALSE(report->genuine_sampled);
  EXPECT_FALSE(report->impostor_sampled);
  for (const std::string& note : report->notes) EXPECT_THAT(note, Not(HasSubstr("sampled:"))) << note;

  const ScoreHistogram& h = report->histogram;
  ASSERT_EQ(h.genuine.size(), 50u);
  ASSERT_EQ(h.impostor.size(), 50u);
  EXPECT_EQ(Sum(h.genuine), report->genuine_pairs);
  EXPECT_EQ(Sum(h.impostor), report->impostor_pairs);
  const BruteForce all = AllPairs(*gallery);
  EXPECT_LE(h.min, all.impostor.front());
  EXPECT_GT(h.min, all.impostor.front() - 0.01 - 1e-9) << "rounded outward to 0.01, no further";
  EXPECT_GE(h.max, all.genuine.back());
  EXPECT_LT(h.max, all.genuine.back() + 0.01 + 1e-9);
  EXPECT_NEAR(h.min * 100, std::round(h.min * 100), 1e-6);
  EXPECT_NEAR(h.max * 100, std::round(h.max * 100), 1e-6);
  // The synthetic population is what it claims: genuine scores well above impostor ones.
  EXPECT_GT(all.genuine.front(), 0.5);
  EXPECT_LT(all.impostor.back(), 0.5);
}

TEST(GalleryReportTest, CountsPairsOfIdentitiesWithUnequalTemplateCounts) {
  const auto gallery = Population(std::vector<int>{1, 2, 3, 5, 1});
  const auto report = BuildGalleryReport(*gallery, {}, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->identities_with_genuine_pairs, 3);
  EXPECT_EQ(report->genuine_pairs, 0 + 1 + 3 + 10 + 0);
  EXPECT_EQ(report->impostor_pairs, 12 * 11 / 2 - 14);
}

TEST(GalleryReportTest, RatesAtThresholdsMatchABruteForceCount) {
  const auto gallery = Population(30, 4, 0.09);
  const BruteForce all = AllPairs(*gallery);
  // One threshold exactly at an impostor score and one exactly at a genuine score: a pair at the threshold
  // is accepted.
  const double at_impostor = all.impostor[all.impostor.size() - 5];
  const double at_genuine = all.genuine[7];
  const std::vector<std::pair<std::string, double>> thresholds = {
      {"in force", 0.3}, {"at impostor", at_impostor}, {"at genuine", at_genuine}, {"low", 0.1}, {"high", 0.9}};
  const auto report = BuildGalleryReport(*gallery, thresholds, {});
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->thresholds.size(), thresholds.size());
  for (size_t i = 0; i < thresholds.size(); ++i) {
    const ThresholdRates& r = report->thresholds[i];
    const double t = thresholds[i].second;
    EXPECT_EQ(r.name, thresholds[i].first);
    EXPECT_EQ(r.threshold, t);
    EXPECT_EQ(r.far.pairs, static_cast<int64_t>(all.impostor.size()));
    EXPECT_EQ(r.far.errors, CountAtOrAbove(all.impostor, t)) << r.name;
    EXPECT_DOUBLE_EQ(r.far.rate, static_cast<double>(r.far.errors) / r.far.pairs);
    EXPECT_EQ(r.frr.pairs, static_cast<int64_t>(all.genuine.size()));
    EXPECT_EQ(r.frr.errors, static_cast<int64_t>(all.genuine.size()) - CountAtOrAbove(all.genuine, t)) << r.name;
    EXPECT_LE(r.far.low, r.far.rate);
    EXPECT_GE(r.far.high, r.far.rate);
    EXPECT_LE(r.frr.low, r.frr.rate);
    EXPECT_GE(r.frr.high, r.frr.rate);
  }
  EXPECT_EQ(report->thresholds[1].far.errors, 5) << "the impostor pair at the threshold is a false accept";
  EXPECT_EQ(report->thresholds[2].frr.errors, 7) << "the genuine pair at the threshold is accepted";
  EXPECT_GT(report->thresholds[3].far.errors, report->thresholds[0].far.errors) << "a lower threshold accepts more";
}

TEST(GalleryReportTest, TheThresholdForATargetFarIsTheMostLenientThatMeetsIt) {
  const auto gallery = Population(40, 3, 0.08);
  const BruteForce all = AllPairs(*gallery);
  GalleryReportOptions options;
  options.target_fars = {0.05, 1e-2, 1e-3, 2e-4};
  const auto report = BuildGalleryReport(*gallery, {}, options);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->far_targets.size(), options.target_fars.size());
  const double n = static_cast<double>(all.impostor.size());
  for (const FarTargetRates& t : report->far_targets) {
    SCOPED_TRACE(t.target_far);
    const int64_t accepted = CountAtOrAbove(all.impostor, t.threshold);
    EXPECT_EQ(t.far.errors, accepted);
    EXPECT_LE(accepted, t.target_far * n) << "the threshold meets its target";
    EXPECT_EQ(accepted, static_cast<int64_t>(std::floor(t.target_far * n))) << "random scores have no ties";
    // The next lower impostor score as the threshold would accept more than the target allows.
    const auto below = std::lower_bound(all.impostor.begin(), all.impostor.end(), t.threshold);
    ASSERT_NE(below, all.impostor.begin());
    EXPECT_GT(CountAtOrAbove(all.impostor, *(below - 1)), t.target_far * n);
    EXPECT_EQ(t.frr.errors, static_cast<int64_t>(all.genuine.size()) - CountAtOrAbove(all.genuine, t.threshold));
  }
  // Halfway between the k-th largest impostor score (the last accepted) and the (k+1)-th.
  const size_t k = static_cast<size_t>(std::floor(0.05 * n));
  const size_t size = all.impostor.size();
  EXPECT_DOUBLE_EQ(report->far_targets[0].threshold, (all.impostor[size - k] + all.impostor[size - 1 - k]) / 2);
  // A smaller target needs a stricter threshold.
  for (size_t i = 1; i < report->far_targets.size(); ++i) {
    EXPECT_GE(report->far_targets[i].threshold, report->far_targets[i - 1].threshold);
  }
  // 7020 impostor pairs: 1e-3 needs 10000 for 10 expected false accepts.
  EXPECT_EQ(report->far_targets[1].impostor_pairs_needed, 1000);
  EXPECT_EQ(report->far_targets[2].impostor_pairs_needed, 10000);
  EXPECT_EQ(report->far_targets[3].impostor_pairs_needed, 50000);
  EXPECT_TRUE(report->far_targets[1].reliable);
  EXPECT_FALSE(report->far_targets[2].reliable);
  EXPECT_THAT(report->notes, Contains(AllOf(HasSubstr("target FAR 0.001 is not reliable"),
                                            HasSubstr(std::to_string(report->impostor_pairs) + " impostor pairs"),
                                            HasSubstr("10000"))));
  EXPECT_THAT(report->notes, Contains(HasSubstr("target FAR 0.0002 is not reliable")));
  EXPECT_THAT(report->notes, Not(Contains(HasSubstr("target FAR 0.01 "))));
}

TEST(GalleryReportTest, AZeroAllowanceThresholdSitsJustAboveTheHighestImpostorScore) {
  const auto gallery = Population(10, 3);
  const BruteForce all = AllPairs(*gallery);
  GalleryReportOptions options;
  options.target_fars = {1.0 / static_cast<double>(all.impostor.size() + 1)};
  const auto report = BuildGalleryReport(*gallery, {}, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->far_targets[0].threshold, all.impostor.back());
  EXPECT_EQ(report->far_targets[0].threshold, std::nextafter(all.impostor.back(), 2.0));
  EXPECT_EQ(report->far_targets[0].far.errors, 0);
}

TEST(GalleryReportTest, DuplicateEnrolmentsAreNamedAndTiedScoresAreNotSplit) {
  // Three ids share one exact template (one person enrolled three times): three impostor pairs with the
  // same score of about 1.
  std::mt19937 rng(3);
  const std::vector<float> shared = RandomUnit(rng);
  std::vector<IdentityState> states;
  for (int i = 0; i < 12; ++i) {
    std::vector<std::vector<float>> embeddings = {RandomUnit(rng), RandomUnit(rng)};
    if (i < 3) embeddings[0] = shared;
    states.push_back(Identity(IdentityId(i), embeddings));
  }
  auto gallery = EmptyCollection();
  ASSERT_TRUE(gallery->Load(std::move(states)).ok());
  const BruteForce all = AllPairs(*gallery);
  ASSERT_EQ(CountAtOrAbove(all.impostor, 0.99), 3);
  GalleryReportOptions options;
  // Two false accepts allowed, but the top three are tied: the threshold must reject all three.
  options.target_fars = {2.5 / static_cast<double>(all.impostor.size())};
  const auto report = BuildGalleryReport(*gallery, {}, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->far_targets[0].far.errors, 0);
  EXPECT_GT(report->far_targets[0].threshold, all.impostor.back());
  EXPECT_THAT(report->notes, Contains(AllOf(HasSubstr("3 impostor pairs"), HasSubstr("two identity ids"))));

  const auto clean = BuildGalleryReport(*Population(12, 2), {}, {});
  ASSERT_TRUE(clean.ok());
  EXPECT_THAT(clean->notes, Not(Contains(HasSubstr("identity ids"))));
}

TEST(GalleryReportTest, WilsonIntervalsContainTheRateAndShrinkWithMorePairs) {
  const RateEstimate ten = WilsonEstimate(10, 100);
  EXPECT_DOUBLE_EQ(ten.rate, 0.1);
  EXPECT_NEAR(ten.low, 0.05523, 1e-4);
  EXPECT_NEAR(ten.high, 0.17437, 1e-4);
  const RateEstimate hundred = WilsonEstimate(100, 1000);
  EXPECT_LT(hundred.low, 0.1);
  EXPECT_GT(hundred.high, 0.1);
  EXPECT_LT(hundred.high - hundred.low, ten.high - ten.low);
  const RateEstimate none = WilsonEstimate(0, 50);
  EXPECT_EQ(none.low, 0);
  EXPECT_GT(none.high, 0);
  EXPECT_LT(none.high, 0.1);
  const RateEstimate all = WilsonEstimate(50, 50);
  EXPECT_EQ(all.high, 1);
  EXPECT_LT(all.low, 1);
  const RateEstimate empty = WilsonEstimate(0, 0);
  EXPECT_EQ(empty.low, 0);
  EXPECT_EQ(empty.high, 1);

  // In reports: the same population's rate, over more identities, has a narrower interval.
  const std::vector<std::pair<std::string, double>> thresholds = {{"t", 0.2}};
  const auto small = BuildGalleryReport(*Population(20, 3, 0.05, 1), thresholds, {});
  const auto large = BuildGalleryReport(*Population(80, 3, 0.05, 2), thresholds, {});
  ASSERT_TRUE(small.ok() && large.ok());
  const RateEstimate& s = small->thresholds[0].far;
  const RateEstimate& l = large->thresholds[0].far;
  EXPECT_GT(l.pairs, s.pairs);
  EXPECT_LT(l.high - l.low, s.high - s.low);
  EXPECT_THAT(large->notes, Contains(HasSubstr("treat pairs as independent")));
}

TEST(GalleryReportTest, SamplingCapsAreHonouredAndFlagged) {
  const auto gallery = Population(20, 4);
  GalleryReportOptions options;
  options.max_genuine_pairs = 50;
  options.max_impostor_pairs = 500;
  const auto pairs = BuildGalleryReport(*gallery, {}, options);
  ASSERT_TRUE(pairs.ok()) << pairs.status();
  EXPECT_EQ(pairs->sampled_identities, 20);
  EXPECT_EQ(pairs->genuine_pairs, 50);
  EXPECT_EQ(pairs->impostor_pairs, 500);
  EXPECT_TRUE(pairs->genuine_sampled);
  EXPECT_TRUE(pairs->impostor_sampled);
  EXPECT_EQ(Sum(pairs->histogram.genuine), 50);
  EXPECT_EQ(Sum(pairs->histogram.impostor), 500);
  EXPECT_THAT(pairs->notes, Contains(HasSubstr("Genuine pairs were sampled: 50 of the 120")));
  EXPECT_THAT(pairs->notes, Contains(HasSubstr("Impostor pairs were sampled: 500 of the 3040")));
  // Sampled pairs are real pairs of their class: the thresholds' counts lie within the brute force's.
  const BruteForce all = AllPairs(*gallery);
  const auto sampled = BuildGalleryReport(*gallery, {{"t", 0.0}}, options);
  ASSERT_TRUE(sampled.ok());
  EXPECT_LE(sampled->thresholds[0].far.errors, CountAtOrAbove(all.impostor, 0.0));
  EXPECT_GE(sampled->histogram.min, std::floor(all.impostor.front() * 100) / 100 - 1e-9);

  options = {};
  options.max_templates = 30;
  const auto identities = BuildGalleryReport(*gallery, {}, options);
  ASSERT_TRUE(identities.ok()) << identities.status();
  EXPECT_EQ(identities->identities, 20);
  EXPECT_EQ(identities->sampled_identities, 7) << "7 x 4 templates fit in 30; an 8th would not";
  EXPECT_EQ(identities->sampled_templates, 28);
  EXPECT_EQ(identities->genuine_pairs, 7 * 6);
  EXPECT_EQ(identities->impostor_pairs, 28 * 27 / 2 - 7 * 6);
  EXPECT_FALSE(identities->impostor_sampled) << "all pairs of the sampled identities are scored";
  EXPECT_THAT(identities->notes, Contains(HasSubstr("Identities were sampled: 7 of 20 identities (28 of 80")));
}

TEST(GalleryReportTest, TheSameSeedGivesTheSameReport) {
  const auto gallery = Population(40, 3);
  GalleryReportOptions options;
  options.max_templates = 60;
  options.max_impostor_pairs = 300;
  const std::vector<std::pair<std::string, double>> thresholds = {{"t", 0.15}};
  const auto a = BuildGalleryReport(*gallery, thresholds, options);
  const auto b = BuildGalleryReport(*gallery, thresholds, options);
  options.seed = 2;
  const auto c = BuildGalleryReport(*gallery, thresholds, options);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->histogram.genuine, b->histogram.genuine);
  EXPECT_EQ(a->histogram.impostor, b->histogram.impostor);
  EXPECT_EQ(a->histogram.min, b->histogram.min);
  EXPECT_EQ(a->thresholds[0].far.errors, b->thresholds[0].far.errors);
  ASSERT_EQ(a->far_targets.size(), b->far_targets.size());
  for (size_t i = 0; i < a->far_targets.size(); ++i) {
    EXPECT_EQ(a->far_targets[i].threshold, b->far_targets[i].threshold);
  }
  EXPECT_EQ(a->notes, b->notes);
  const bool same = a->histogram.impostor == c->histogram.impostor && a->histogram.genuine == c->histogram.genuine &&
                    a->far_targets[0].threshold == c->far_targets[0].threshold;
  EXPECT_FALSE(same) << "another seed draws another sample";
}

TEST(GalleryReportTest, RefusesGalleriesWithoutBothKindsOfPair) {
  const auto one = Population(1, 5);
  auto report = BuildGalleryReport(*one, {}, {});
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("at least 2"));

  const auto empty = EmptyCollection();
  report = BuildGalleryReport(*empty, {}, {});
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);

  const auto singles = Population(10, 1);
  report = BuildGalleryReport(*singles, {}, {});
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("2 or more templates"));

  // A sample too small for either kind says how to get a bigger one.
  GalleryReportOptions options;
  options.max_templates = 4;
  report = BuildGalleryReport(*Population(10, 3), {}, options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("raise max_templates"));
}

TEST(GalleryReportTest, RefusesBadOptions) {
  const auto gallery = Population(5, 2);
  const auto code = [&](const GalleryReportOptions& options,
                        const std::vector<std::pair<std::string, double>>& thresholds = {}) {
    return BuildGalleryReport(*gallery, thresholds, options).status().code();
  };
  EXPECT_EQ(code({}), absl::StatusCode::kOk);
  const auto with = [](auto change) {
    GalleryReportOptions options;
    change(options);
    return options;
  };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(with([](auto& o) { o.histogram_bins = 0; })), kInvalid);
  EXPECT_EQ(code(with([](auto& o) { o.histogram_bins = 1001; })), kInvalid);
  EXPECT_EQ(code(with([](auto& o) { o.histogram_bins = 1000; })), absl::StatusCode::kOk);
  EXPECT_EQ(code(with([](auto& o) { o.target_fars = {0.0}; })), kInvalid);
  EXPECT_EQ(code(with([](auto& o) { o.target_fars = {1e-3, 1.0}; })), kInvalid);
  EXPECT_EQ(code(with([](auto& o) { o.target_fars = {-0.1}; })), kInvalid);
  EXPECT_EQ(code(with([](auto& o) { o.target_fars = {std::nan("")}; })), kInvalid);
  EXPECT_EQ(code(with([](auto& o) { o.max_templates = 0; })), kInvalid);
  EXPECT_EQ(code(with([](auto& o) { o.max_genuine_pairs = 0; })), kInvalid);
  EXPECT_EQ(code(with([](auto& o) { o.max_impostor_pairs = -1; })), kInvalid);
  EXPECT_EQ(code({}, {{"inf", std::numeric_limits<double>::infinity()}}), kInvalid);
  EXPECT_EQ(code({}, {{"ok", 0.5}, {"nan", std::nan("")}}), kInvalid);
  const auto status = BuildGalleryReport(*gallery, {}, with([](auto& o) { o.histogram_bins = 0; })).status();
  EXPECT_THAT(status.message(), HasSubstr("histogram_bins"));
}

TEST(SampleTemplatesTest, TakesWholeIdentitiesWithinTheCap) {
  std::vector<int> counts;
  for (int i = 0; i < 50; ++i) counts.push_back(1 + i % 5);
  const auto gallery = Population(counts);
  for (const int64_t cap : {1, 7, 30, 100}) {
    SCOPED_TRACE(cap);
    const TemplateSample sample = gallery->SampleTemplates(cap, 9);
    EXPECT_EQ(sample.dim, kDim);
    EXPECT_EQ(sample.identities_in_gallery, 50);
    EXPECT_EQ(sample.templates_in_gallery, 150);
    EXPECT_LE(static_cast<int64_t>(sample.identity.size()), cap);
    ASSERT_EQ(sample.rows.size(), sample.identity.size() * kDim);
    EXPECT_EQ(std::set<std::string>(sample.identity_ids.begin(), sample.identity_ids.end()).size(),
              sample.identity_ids.size());
    // Each sampled identity's templates, all of them, in enrolment order, its rows together.
    size_t row = 0;
    for (size_t dense = 0; dense < sample.identity_ids.size(); ++dense) {
      const auto state = gallery->State(sample.identity_ids[dense]);
      ASSERT_TRUE(state.ok());
      for (const TemplateRecord& t : state->templates) {
        ASSERT_LT(row, sample.identity.size());
        EXPECT_EQ(sample.identity[row], static_cast<int32_t>(dense));
        EXPECT_TRUE(std::equal(t.embedding.begin(), t.embedding.end(), sample.rows.begin() + row * kDim));
        ++row;
      }
    }
    EXPECT_EQ(row, sample.identity.size());
  }
  const TemplateSample all = gallery->SampleTemplates(150, 9);
  EXPECT_EQ(all.identity_ids.size(), 50u);
  EXPECT_EQ(all.identity.size(), 150u);
}

TEST(SampleTemplatesTest, IsSeededAndUniformOverIdentities) {
  const auto gallery = Population(50, 2);
  const auto ids = [&](uint64_t seed) { return gallery->SampleTemplates(20, seed).identity_ids; };
  EXPECT_EQ(ids(5), ids(5));
  EXPECT_NE(ids(5), ids(6));
  // 10 of 50 identities per draw: over 2000 seeds each identity is drawn about 400 times (sd 18).
  std::map<std::string, int> drawn;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    const std::vector<std::string> sample = ids(seed);
    ASSERT_EQ(sample.size(), 10u);
    for (const std::string& id : sample) ++drawn[id];
  }
  EXPECT_EQ(drawn.size(), 50u);
  for (const auto& [id, times] : drawn) {
    EXPECT_GT(times, 320) << id;
    EXPECT_LT(times, 480) << id;
  }
}

}  // namespace
}  // namespace veriface::testing
