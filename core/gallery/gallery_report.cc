#include "core/gallery/gallery_report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/gallery/validation.h"

namespace veriface {
namespace {

constexpr double kZ95 = 1.959963984540054;  // the two-sided 95% normal quantile
constexpr int kMaxHistogramBins = 1000;
// Pairs are drawn from a stream apart from the one SampleTemplates draws identities from, so that the
// two draws are not the same numbers reused.
constexpr uint64_t kPairStream = 0x9e3779b97f4a7c15ULL;

absl::Status ValidateOptions(const std::vector<std::pair<std::string, double>>& thresholds,
                             const GalleryReportOptions& options) {
  if (options.histogram_bins < 1 || options.histogram_bins > kMaxHistogramBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram_bins must be in [1, ", kMaxHistogramBins, "], got ", options.histogram_bins));
  }
  if (options.max_templates < 1 || options.max_genuine_pairs < 1 || options.max_impostor_pairs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_templates, max_genuine_pairs and max_impostor_pairs must be "
                     "at least 1, got ",
                     options.max_templates, ", ", options.max_genuine_pairs, " and ", options.max_impostor_pairs));
  }
  for (const double target : options.target_fars) {
    // Written so that NaN fails too.
    if (!(target > 0 && target < 1)) {
      return absl::InvalidArgumentError(absl::StrFormat("a target FAR must be in (0, 1), got %g", target));
    }
  }
  for (const auto& [name, value] : thresholds) {
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrFormat("threshold %s is not finite (%g)", Quote(name), value));
    }
  }
  return absl::OkStatus();
}

// The pairs (a, b), a < b, of one class (genuine or impostor) over rows grouped by identity, numbered
// 0..total-1 row by row: row a's pairs are (a, first[a]), ..., (a, first[a] + count[a] - 1). Numbering them
// lets a uniform sample of pairs be a uniform sample of numbers, without listing every pair.
class PairSpace {
 public:
  void AddRow(int64_t first, int64_t count) {
    start_.push_back(total_);
    first_.push_back(first);
    total_ += count;
  }
  int64_t total() const { return total_; }
  // Pair number q, 0 <= q < total().
  std::pair<int64_t, int64_t> Pair(int64_t q) const {
    // The last row starting at or before q; rows without pairs share their start with the next row, so
    // this one has q among its pairs.
    const int64_t a = (std::upper_bound(start_.begin(), start_.end(), q) - start_.begin()) - 1;
    return {a, first_[a] + (q - start_[a])};
  }

 private:
  std::vector<int64_t> start_;  // per row: the number of its first pair
  std::vector<int64_t> first_;  // per row: its first partner row
  int64_t total_ = 0;
};

// All of 0..total-1 when there are at most `cap`, else `cap` of them drawn uniformly without replacement
// (Floyd's algorithm, so that the work is in the sample's size, not the population's), ascending.
std::vector<int64_t> PairNumbers(int64_t total, int64_t cap, std::mt19937_64& rng) {
  std::vector<int64_t> numbers;
  if (total <= cap) {
    numbers.resize(static_cast<size_t>(total));
    std::iota(numbers.begin(), numbers.end(), 0);
    return numbers;
  }
  std::unordered_set<int64_t> chosen;
  chosen.reserve(static_cast<size_t>(cap));
  for (int64_t j = total - cap; j < total; ++j) {
    std::uniform_int_distribution<int64_t> pick(0, j);
    if (!chosen.insert(pick(rng)).second) chosen.insert(j);
  }
  numbers.assign(chosen.begin(), chosen.end());
  // Sorted, so that the scores (and anything that depends on their order) do not depend on the hash set.
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

double Similarity(const float* a, const float* b, int64_t dim) {
  double sum = 0;
  for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
}

// The scores of the pairs of `space` (all, or `cap` sampled), ascending.
std::vector<double> ScorePairs(const TemplateSample& sample, const PairSpace& space, int64_t cap,
                               std::mt19937_64& rng) {
  const std::vector<int64_t> numbers = PairNumbers(space.total(), cap, rng);
  std::vector<double> scores;
  scores.reserve(numbers.size());
  for (const int64_t q : numbers) {
    const auto [a, b] = space.Pair(q);
    scores.push_back(Similarity(&sample.rows[a * sample.dim], &sample.rows[b * sample.dim], sample.dim));
  }
  std::sort(scores.begin(), scores.end());
  return scores;
}

// Over ascending scores: how many are >= t (accepted) and how many are < t (rejected).
int64_t AtOrAbove(const std::vector<double>& ascending, double t) {
  return static_cast<int64_t>(ascending.end() - std::lower_bound(ascending.begin(), ascending.end(), t));
}
int64_t Below(const std::vector<double>& ascending, double t) {
  return static_cast<int64_t>(std::lower_bound(ascending.begin(), ascending.end(), t) - ascending.begin());
}

int64_t Size(const std::vector<double>& v) { return static_cast<int64_t>(v.size()); }

// The most lenient threshold that accepts at most floor(target * n) of the (ascending, non-empty)
// impostor scores: halfway between the k-th and (k+1)-th largest, moved up past any scores tied with the
// (k+1)-th, since a threshold accepts all of a tie or none of it.
double ThresholdForFar(const std::vector<double>& impostor, double target) {
  const int64_t n = Size(impostor);
  const int64_t k = static_cast<int64_t>(std::floor(target * static_cast<double>(n)));  // < n, as target < 1
  const double first_rejected = impostor[n - 1 - k];
  // How many score strictly above it: k when it is not tied with higher scores, fewer when it is.
  const int64_t above =
      static_cast<int64_t>(impostor.end() - std::upper_bound(impostor.begin(), impostor.end(), first_rejected));
  if (above == 0) return std::nextafter(impostor[n - 1], std::numeric_limits<double>::infinity());
  const double lowest_accepted = impostor[n - above];
  const double midpoint = first_rejected + (lowest_accepted - first_rejected) / 2;
  // Two adjacent doubles have no double between them; the midpoint then rounds onto one of them.
  return midpoint > first_rejected ? midpoint : std::nextafter(first_rejected, lowest_accepted);
}

ScoreHistogram Histogram(const std::vector<double>& genuine, const std::vector<double>& impostor, int bins) {
  const double lowest = std::min(genuine.front(), impostor.front());
  const double highest = std::max(genuine.back(), impostor.back());
  ScoreHistogram h;
  // Rounded outward to 0.01 so that the bin edges are readable; the loops undo a rounding that landed
  // just inside the scores.
  h.min = std::floor(lowest * 100) / 100;
  while (h.min > lowest) h.min -= 0.01;
  h.max = std::ceil(highest * 100) / 100;
  while (h.max < highest) h.max += 0.01;
  if (h.max <= h.min) h.max = h.min + 0.01;
  h.genuine.assign(static_cast<size_t>(bins), 0);
  h.impostor.assign(static_cast<size_t>(bins), 0);
  const double per_unit = bins / (h.max - h.min);
  const auto bin = [&](double s) {
    const int64_t i = static_cast<int64_t>(std::floor((s - h.min) * per_unit));
    return static_cast<size_t>(std::clamp<int64_t>(i, 0, bins - 1));
  };
  for (const double s : genuine) ++h.genuine[bin(s)];
  for (const double s : impostor) ++h.impostor[bin(s)];
  return h;
}

}  // namespace

RateEstimate WilsonEstimate(int64_t errors, int64_t pairs) {
  RateEstimate r;
  r.errors = errors;
  r.pairs = pairs;
  r.high = 1;
  if (pairs <= 0) return r;
  const double n = static_cast<double>(pairs);
  const double p = static_cast<double>(errors) / n;
  const double z2 = kZ95 * kZ95;
  const double denominator = 1 + z2 / n;
  const double centre = (p + z2 / (2 * n)) / denominator;
  const double half_width = kZ95 * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator;
  r.rate = p;
  // At 0 errors (or all) the bound is exactly 0 (or 1); computed, it can miss by a rounding error.
  r.low = errors == 0 ? 0 : std::max(0.0, centre - half_width);
  r.high = errors == pairs ? 1 : std::min(1.0, centre + half_width);
  return r;
}

absl::StatusOr<GalleryReport> BuildGalleryReport(const Collection& gallery,
                                                 const std::vector<std::pair<std::string, double>>& thresholds,
                                                 const GalleryReportOptions& options) {
  VF_RETURN_IF_ERROR(ValidateOptions(thresholds, options));
  // The sample is a copy: the scoring below, which may take a second, holds no lock of the gallery.
  const TemplateSample sample = gallery.SampleTemplates(options.max_templates, options.seed);
  GalleryReport report;
  report.gallery = gallery.name();
  report.identities = sample.identities_in_gallery;
  report.templates = sample.templates_in_gallery;
  report.sampled_identities = static_cast<int64_t>(sample.identity_ids.size());
  report.sampled_templates = static_cast<int64_t>(sample.identity.size());
  const bool whole_gallery = report.sampled_identities == report.identities;

  // SampleTemplates gives each identity's rows together, so an identity is a run of rows: a row's
  // genuine partners are the rest of its run, its impostor partners every row after the run.
  const int64_t n = report.sampled_templates;
  std::vector<int64_t> run_end(static_cast<size_t>(n));
  for (int64_t a = n - 1; a >= 0; --a) {
    const bool run_goes_on = a + 1 < n && sample.identity[a + 1] == sample.identity[a];
    run_end[a] = run_goes_on ? run_end[a + 1] : a + 1;
  }
  PairSpace genuine_space;
  PairSpace impostor_space;
  for (int64_t a = 0; a < n; ++a) {
    const bool run_starts = a == 0 || sample.identity[a] != sample.identity[a - 1];
    if (run_starts && run_end[a] - a >= 2) ++report.identities_with_genuine_pairs;
    genuine_space.AddRow(a + 1, run_end[a] - a - 1);
    impostor_space.AddRow(run_end[a], n - run_end[a]);
  }

  if (impostor_space.total() == 0) {
    if (whole_gallery) {
      return absl::FailedPreconditionError(
          absl::StrCat("gallery ", Quote(report.gallery), " has templates of ", report.identities,
                       " identities; a report needs at least 2, since impostor pairs are templates of two "
                       "different identities"));
    }
    return absl::FailedPreconditionError(absl::StrCat("the sample of gallery ", Quote(report.gallery), " holds only ",
                                                      report.sampled_identities, " of its ", report.identities,
                                                      " identities (max_templates ", options.max_templates,
                                                      "); raise max_templates so that it holds at least 2"));
  }
  if (genuine_space.total() == 0) {
    if (whole_gallery) {
      return absl::FailedPreconditionError(
          absl::StrCat("no identity in gallery ", Quote(report.gallery),
                       " has 2 or more templates; genuine pairs are two templates of one identity, so the "
                       "report needs at least one such identity"));
    }
    return absl::FailedPreconditionError(absl::StrCat("no identity in the sample of gallery ", Quote(report.gallery),
                                                      " (", report.sampled_identities, " of ", report.identities,
                                                      " identities) has 2 or more templates; raise max_templates (",
                                                      options.max_templates, ") or enrol more templates per identity"));
  }

  std::mt19937_64 rng(options.seed ^ kPairStream);
  const std::vector<double> genuine = ScorePairs(sample, genuine_space, options.max_genuine_pairs, rng);
  const std::vector<double> impostor = ScorePairs(sample, impostor_space, options.max_impostor_pairs, rng);
  report.genuine_pairs = Size(genuine);
  report.impostor_pairs = Size(impostor);
  report.genuine_sampled = report.genuine_pairs < genuine_space.total();
  report.impostor_sampled = report.impostor_pairs < impostor_space.total();

  for (const auto& [name, value] : thresholds) {
    report.thresholds.push_back(ThresholdRates{name, value, WilsonEstimate(AtOrAbove(impostor, value), Size(impostor)),
                                               WilsonEstimate(Below(genuine, value), Size(genuine))});
  }
  for (const double target : options.target_fars) {
    FarTargetRates t;
    t.target_far = target;
    t.threshold = ThresholdForFar(impostor, target);
    t.far = WilsonEstimate(AtOrAbove(impostor, t.threshold), Size(impostor));
    t.frr = WilsonEstimate(Below(genuine, t.threshold), Size(genuine));
    // 10 / 1e-3 is a hair above 10000 in binary; the slack keeps the count the round one meant.
    t.impostor_pairs_needed =
        static_cast<int64_t>(std::ceil(static_cast<double>(kMinExpectedFalseAccepts) / target * (1 - 1e-12)));
    t.reliable =
        report.impostor_pairs >= t.impostor_pairs_needed && report.genuine_pairs >= kMinGenuinePairsForReliable;
    report.far_targets.push_back(t);
  }
  report.histogram = Histogram(genuine, impostor, options.histogram_bins);

  std::vector<std::string>& notes = report.notes;
  if (!whole_gallery) {
    notes.push_back(absl::StrCat("Identities were sampled: ", report.sampled_identities, " of ", report.identities,
                                 " identities (", report.sampled_templates, " of ", report.templates,
                                 " templates), to stay within max_templates ", options.max_templates,
                                 "; the rates are those of this random sample."));
  }
  if (report.genuine_sampled) {
    notes.push_back(absl::StrCat("Genuine pairs were sampled: ", report.genuine_pairs, " of the ",
                                 genuine_space.total(), " in the sample were scored, drawn uniformly."));
  }
  if (report.impostor_sampled) {
    notes.push_back(absl::StrCat("Impostor pairs were sampled: ", report.impostor_pairs, " of the ",
                                 impostor_space.total(), " in the sample were scored, drawn uniformly."));
  }
  notes.push_back(absl::StrCat(
      "The 95% intervals treat pairs as independent, but each template is in many pairs and each identity's "
      "templates are alike, so the intervals are too narrow, the more so the fewer identities are sampled (here ",
      report.sampled_identities, ")."));
  for (const FarTargetRates& t : report.far_targets) {
    if (t.reliable) continue;
    std::string note = absl::StrFormat("The estimate at target FAR %g is not reliable: it rests on %d impostor pairs",
                                       t.target_far, report.impostor_pairs);
    if (report.impostor_pairs < t.impostor_pairs_needed) {
      absl::StrAppend(&note, " and needs at least ", t.impostor_pairs_needed, " (", kMinExpectedFalseAccepts,
                      " expected false accepts)");
    }
    if (report.genuine_pairs < kMinGenuinePairsForReliable) {
      absl::StrAppend(&note, ", and on ", report.genuine_pairs, " genuine pairs, fewer than ",
                      kMinGenuinePairsForReliable);
    }
    notes.push_back(note + ".");
  }
  if (impostor.back() >= kLikelyDuplicateScore) {
    const int64_t duplicates = AtOrAbove(impostor, kLikelyDuplicateScore);
    notes.push_back(absl::StrFormat(
        "%d impostor pair%s%s score %g or more (highest %.4f): likely one person enrolled under two identity "
        "ids rather than two people. They count as false accepts here and raise the FAR-target thresholds.",
        duplicates, duplicates == 1 ? "" : "s", report.impostor_sampled ? " among those scored" : "",
        kLikelyDuplicateScore, impostor.back()));
  }
  return report;
}

}  // namespace veriface
