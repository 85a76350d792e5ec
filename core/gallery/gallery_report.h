#pragma once
// A gallery's own score distributions: genuine pairs (two templates of one identity) and impostor pairs
// (templates of two different identities) scored over a sample of the gallery, and from them the
// false-accept and false-reject rates of given thresholds on the deployment's own population, and the
// thresholds that give requested false-accept rates.
//
// The rates assume that each identity id is one person and that different ids are different people. A
// person enrolled twice under two ids makes impostor pairs that are really genuine ones: they show up as
// impostor scores near 1, inflate the measured FAR and push the FAR-target thresholds up. The report says
// so in its notes when it sees such scores.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gallery/collection.h"

namespace veriface {

// An estimate at a target FAR rests on at least this many expected false accepts among the impostor
// pairs; with fewer, one more or one fewer high impostor score moves the threshold a lot.
inline constexpr int64_t kMinExpectedFalseAccepts = 10;
// And on at least this many genuine pairs, for its FRR to mean anything.
inline constexpr int64_t kMinGenuinePairsForReliable = 100;
// Impostor pairs scoring at least this are more likely one person under two ids than two people.
inline constexpr double kLikelyDuplicateScore = 0.99;

struct GalleryReportOptions {
  int64_t max_templates = 20000;         // identities are sampled beyond this many templates
  int64_t max_genuine_pairs = 200000;    // genuine pairs: all when fewer, else this many sampled uniformly
  int64_t max_impostor_pairs = 1000000;  // impostor pairs: all when fewer, else this many sampled uniformly
  uint64_t seed = 1;                     // the same seed over the same gallery gives the same report
  // Over [lowest, highest] score of both classes, rounded outward to 0.01.
  int histogram_bins = 50;
  std::vector<double> target_fars = {1e-2, 1e-3, 1e-4};
};

// errors out of pairs, with a 95% Wilson score interval [low, high].
struct RateEstimate {
  int64_t errors = 0;
  int64_t pairs = 0;
  double rate = 0;
  double low = 0;
  double high = 0;
};

struct ThresholdRates {
  std::string name;
  double threshold = 0;
  RateEstimate far;
  RateEstimate frr;
};

struct FarTargetRates {
  double target_far = 0;
  double threshold = 0;  // the most lenient threshold with measured FAR <= target on these pairs
  RateEstimate far;      // achieved
  RateEstimate frr;
  // impostor pairs >= impostor_pairs_needed and genuine pairs >= kMinGenuinePairsForReliable.
  bool reliable = false;
  int64_t impostor_pairs_needed = 0;  // ceil(kMinExpectedFalseAccepts / target_far)
};

// Pair counts per bin; bin i covers [min + i * w, min + (i + 1) * w) with w = (max - min) / bins, the
// last bin including max.
struct ScoreHistogram {
  double min = 0;
  double max = 0;
  std::vector<int64_t> genuine;
  std::vector<int64_t> impostor;
};

struct GalleryReport {
  std::string gallery;
  int64_t identities = 0;  // in the gallery
  int64_t templates = 0;
  int64_t sampled_identities = 0;
  int64_t sampled_templates = 0;
  int64_t identities_with_genuine_pairs = 0;  // in the sample: identities with >= 2 templates
  int64_t genuine_pairs = 0;                  // scored
  int64_t impostor_pairs = 0;
  bool genuine_sampled = false;  // fewer genuine pairs scored than the sample has
  bool impostor_sampled = false;
  std::vector<ThresholdRates> thresholds;   // one per input threshold, same order
  std::vector<FarTargetRates> far_targets;  // one per options.target_fars, same order
  ScoreHistogram histogram;
  std::vector<std::string> notes;  // plain-English caveats
};

// The report over a sample of `gallery` (taken under one read lock; the scoring runs without it).
// `thresholds`: (name, value) pairs to evaluate, e.g. {"in force", 0.91}, {"far_1e-3", 0.93}. A pair is
// accepted when similarity >= threshold (the service's rule). Scores are dot products of the unit-length
// templates, summed in double. INVALID_ARGUMENT for bad options (histogram_bins < 1 or > 1000, a target
// FAR not in (0, 1), a non-finite threshold, a max_* < 1); FAILED_PRECONDITION, saying what is missing,
// when the gallery (or the sample of it) has fewer than 2 identities or no identity with 2 templates.
absl::StatusOr<GalleryReport> BuildGalleryReport(const Collection& gallery,
                                                 const std::vector<std::pair<std::string, double>>& thresholds,
                                                 const GalleryReportOptions& options);

// `errors` out of `pairs` with its 95% Wilson score interval; for 0 pairs the rate is 0 and the
// interval [0, 1]. Exposed for the tests.
RateEstimate WilsonEstimate(int64_t errors, int64_t pairs);

}  // namespace veriface
