// Does the gallery report tell the truth? Every image of a pairs file (View 2) where a face was found is enrolled
// into an in-memory gallery, one identity per person; the report's FAR and FRR at the bundle's thresholds,
// and its thresholds at target FARs, are compared with the rates the pairs file's own pairs give at the same
// thresholds. Then the gallery is cut to fewer templates (by identities, several seeds) to see from what size
// the estimate is useful.
//
//   gallery_report_check --embeddings .cache/quality/view2_embeddings.bin --pairs ../shared/data/lfw/pairs.txt
//       --model models/default --out bench/results/gallery_report_check
//
// The embeddings come from `quality_bench levels --embeddings-out` (the server's own pipeline).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/index/embedding_cache.h"
#include "core/common/file_util.h"
#include "core/eval/pairs.h"
#include "core/gallery/collection.h"
#include "core/gallery/gallery_report.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Options {
  std::string embeddings;
  std::string pairs = "../shared/data/lfw/pairs.txt";
  std::string model_dir = "models/default";
  std::string out;
  std::string command;
};

json Rate(const RateEstimate& r) {
  return {{"rate", r.rate}, {"errors", r.errors}, {"pairs", r.pairs}, {"low", r.low}, {"high", r.high}};
}

// FAR and FRR of the pairs file's own pairs at `threshold` (accepted when score >= threshold).
std::pair<RateEstimate, RateEstimate> PairRates(const std::vector<std::pair<double, bool>>& scored, double threshold) {
  int64_t impostors = 0, accepted = 0, genuine = 0, rejected = 0;
  for (const auto& [score, same] : scored) {
    if (same) {
      ++genuine;
      rejected += score < threshold ? 1 : 0;
    } else {
      ++impostors;
      accepted += score >= threshold ? 1 : 0;
    }
  }
  return {WilsonEstimate(accepted, impostors), WilsonEstimate(rejected, genuine)};
}

std::string Pct(double v) { return absl::StrFormat("%.3f%%", 100 * v); }

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"gallery_report_check: the gallery report against a pairs file's own rates"};
  app.add_option("--embeddings", o.embeddings, "embedding cache (quality_bench levels --embeddings-out)")->required();
  app.add_option("--pairs", o.pairs, "pairs file")->capture_default_str();
  app.add_option("--model", o.model_dir, "model bundle (for its thresholds)")->capture_default_str();
  app.add_option("--out", o.out, "output prefix (<out>.json, <out>.md)")->required();
  CLI11_PARSE(app, argc, argv);
  for (int i = 0; i < argc; ++i) {
    o.command += (i ? " " : "") + (i == 0 ? fs::path(argv[0]).filename().string() : std::string(argv[i]));
  }

  uint32_t dim = 0;
  const auto records = bench::ReadEmbeddingCache(o.embeddings, &dim);
  const auto pairs = ReadPairsFile(o.pairs);
  const auto model_text = ReadFileToString(o.model_dir + "/model.json");
  if (!records.ok() || !pairs.ok() || !model_text.ok()) {
    std::cerr << (!records.ok() ? records.status()
                  : !pairs.ok() ? pairs.status()
                                : model_text.status())
                     .message()
              << "\n";
    return 1;
  }
  const json model = json::parse(*model_text);
  const std::string model_id = model.value("model_id", "");
  std::vector<std::pair<std::string, double>> thresholds;
  for (const auto& [name, value] : model.at("thresholds").items()) thresholds.emplace_back(name, value.get<double>());

  std::map<std::string, const bench::LfwEmbedding*> by_key;
  for (const bench::LfwEmbedding& r : *records) by_key[r.path] = &r;
  std::vector<std::pair<double, bool>> scored;
  for (const ImagePair& p : pairs->pairs) {
    const auto a = by_key.find(p.a.Key()), b = by_key.find(p.b.Key());
    if (a == by_key.end() || b == by_key.end()) continue;
    double s = 0;
    for (uint32_t i = 0; i < dim; ++i) s += static_cast<double>(a->second->embedding[i]) * b->second->embedding[i];
    scored.emplace_back(s, p.same);
  }

  // The gallery: every cached image, one identity per person.
  Collection gallery(GalleryRecord{"lfw-view2", 0, 0}, model_id, dim, GalleryLimits{});
  std::map<std::string, IdentityState> people;
  for (const bench::LfwEmbedding& r : *records) {
    IdentityState& state = people[r.person];
    state.record.identity_id = r.person;
    state.templates.push_back(TemplateRecord{r.path, r.person, model_id, r.embedding, 0, {}, false});
  }
  std::vector<IdentityState> states;
  for (auto& [name, state] : people) states.push_back(std::move(state));
  if (const absl::Status loaded = gallery.Load(std::move(states)); !loaded.ok()) {
    std::cerr << loaded.message() << "\n";
    return 1;
  }

  GalleryReportOptions full;
  full.max_templates = gallery.template_count();
  full.target_fars = {1e-2, 1e-3, 1e-4};
  const auto report = BuildGalleryReport(gallery, thresholds, full);
  if (!report.ok()) {
    std::cerr << report.status().message() << "\n";
    return 1;
  }
  json comparison = json::array();
  std::ofstream md(o.out + ".md");
  md << "# The gallery report against LFW View 2's own pairs\n\n"
     << "Written by `" << o.command << "` (model `" << model_id << "`). The gallery: every image of the View 2 pairs"
     << " where a face was found (" << gallery.identity_count() << " identities, " << gallery.template_count()
     << " templates); the report scored " << report->genuine_pairs << " genuine and " << report->impostor_pairs
     << " impostor pairs" << (report->impostor_sampled ? " (sampled)" : "") << ". View 2: " << scored.size()
     << " pairs. Rates with 95% Wilson intervals.\n\n"
     << "| threshold | value | FAR: gallery report | FAR: View 2 pairs | FRR: gallery report | FRR: View 2 pairs |\n"
     << "|---|---:|---:|---:|---:|---:|\n";
  for (const ThresholdRates& t : report->thresholds) {
    const auto [far, frr] = PairRates(scored, t.threshold);
    comparison.push_back({{"name", t.name},
                          {"threshold", t.threshold},
                          {"report_far", Rate(t.far)},
                          {"pairs_far", Rate(far)},
                          {"report_frr", Rate(t.frr)},
                          {"pairs_frr", Rate(frr)}});
    md << "| " << t.name << " | " << absl::StrFormat("%.4f", t.threshold) << " | " << Pct(t.far.rate) << " ["
       << Pct(t.far.low) << ", " << Pct(t.far.high) << "] | " << Pct(far.rate) << " (" << far.errors << "/" << far.pairs
       << ") | " << Pct(t.frr.rate) << " [" << Pct(t.frr.low) << ", " << Pct(t.frr.high) << "] | " << Pct(frr.rate)
       << " (" << frr.errors << "/" << frr.pairs << ") |\n";
  }
  json targets = json::array();
  md << "\n| target FAR | report's threshold | reliable | View 2 FAR there | View 2 FRR there "
        "|\n|---:|---:|---|---:|---:|\n";
  for (const FarTargetRates& t : report->far_targets) {
    const auto [far, frr] = PairRates(scored, t.threshold);
    targets.push_back({{"target_far", t.target_far},
                       {"threshold", t.threshold},
                       {"reliable", t.reliable},
                       {"report_far", Rate(t.far)},
                       {"report_frr", Rate(t.frr)},
                       {"pairs_far", Rate(far)},
                       {"pairs_frr", Rate(frr)}});
    md << "| " << t.target_far << " | " << absl::StrFormat("%.4f", t.threshold) << " | " << (t.reliable ? "yes" : "no")
       << " | " << Pct(far.rate) << " (" << far.errors << "/" << far.pairs << ") | " << Pct(frr.rate) << " |\n";
  }

  // Smaller galleries: how far the estimate at far_1e-3's threshold, and the threshold for FAR 1e-3, stray.
  const FarTargetRates& truth = report->far_targets[1];
  json sizes = json::array();
  md << "\n## Smaller galleries\n\nThe gallery sampled to N templates (whole identities), 5 seeds each: the threshold"
     << " the report gives for FAR 1e-3 and the FAR that threshold has on the full gallery's impostor pairs"
     << " (the best estimate of the truth here: " << report->impostor_pairs << " pairs, threshold "
     << absl::StrFormat("%.4f", truth.threshold) << ").\n\n"
     << "| templates | identities (mean) | genuine pairs | reliable | threshold min..max | true FAR at it, min..max |\n"
     << "|---:|---:|---:|---|---:|---:|\n";
  GalleryReportOptions truth_options = full;
  for (const int64_t n : {100, 300, 1000, 3000, 10000}) {
    if (n >= gallery.template_count()) break;
    double t_min = 2, t_max = -2, far_min = 1, far_max = 0, identities = 0, genuine = 0;
    int reliable = 0;
    json runs = json::array();
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      GalleryReportOptions small;
      small.max_templates = n;
      small.seed = seed;
      small.target_fars = {1e-3};
      const auto r = BuildGalleryReport(gallery, {}, small);
      if (!r.ok()) {
        runs.push_back({{"seed", seed}, {"error", std::string(r.status().message())}});
        continue;
      }
      const double t = r->far_targets[0].threshold;
      truth_options.target_fars = {1e-3};
      const auto at = BuildGalleryReport(gallery, {{"t", t}}, truth_options);
      const double true_far = at.ok() ? at->thresholds[0].far.rate : std::nan("");
      t_min = std::min(t_min, t);
      t_max = std::max(t_max, t);
      far_min = std::min(far_min, true_far);
      far_max = std::max(far_max, true_far);
      identities += static_cast<double>(r->sampled_identities) / 5;
      genuine += static_cast<double>(r->genuine_pairs) / 5;
      reliable += r->far_targets[0].reliable ? 1 : 0;
      runs.push_back({{"seed", seed},
                      {"threshold", t},
                      {"true_far", true_far},
                      {"reliable", r->far_targets[0].reliable},
                      {"identities", r->sampled_identities},
                      {"genuine_pairs", r->genuine_pairs},
                      {"impostor_pairs", r->impostor_pairs}});
    }
    sizes.push_back({{"templates", n}, {"runs", runs}});
    md << "| " << n << " | " << absl::StrFormat("%.0f", identities) << " | " << absl::StrFormat("%.0f", genuine)
       << " | " << reliable << " of 5 | " << absl::StrFormat("%.4f..%.4f", t_min, t_max) << " | "
       << absl::StrFormat("%.2g..%.2g", far_min, far_max) << " |\n";
  }
  const json result = {{"command", o.command},
                       {"model", model_id},
                       {"gallery",
                        {{"identities", gallery.identity_count()},
                         {"templates", gallery.template_count()},
                         {"genuine_pairs", report->genuine_pairs},
                         {"impostor_pairs", report->impostor_pairs}}},
                       {"pairs_file", fs::path(o.pairs).filename().string()},
                       {"pairs_scored", scored.size()},
                       {"thresholds", comparison},
                       {"far_targets", targets},
                       {"smaller_galleries", sizes},
                       {"notes", report->notes}};
  std::ofstream(o.out + ".json") << result.dump(2) << "\n";
  std::cout << result.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) { return veriface::Main(argc, argv); }
