#include "trainer/eval/commands.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/common/device.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/image/decode.h"
#include "core/model/face_model.h"
#include "core/model/model_spec.h"
#include "trainer/calibration/calibration.h"
#include "trainer/eval/evaluator.h"
#include "trainer/eval/feature_cache.h"
#include "trainer/plot/chart.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Session {
  std::shared_ptr<const FaceModel> model;
  std::unique_ptr<FeatureCache> cache;
};

absl::StatusOr<Session> Prepare(const CommonEvalOptions& o) {
  if (o.threads < 0) return absl::InvalidArgumentError(absl::StrCat("--threads must be >= 0, got ", o.threads));
  if (o.batch < 1) return absl::InvalidArgumentError(absl::StrCat("--batch must be >= 1, got ", o.batch));
  if (o.lfw_dir.empty()) return absl::InvalidArgumentError("no LFW folder given (--lfw DIR)");
  std::error_code ec;
  if (!fs::is_directory(o.lfw_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("LFW folder '", o.lfw_dir, "' is not a directory"));
  }
  SetTorchThreads(o.threads);
  VF_ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(o.device));
  Session s;
  VF_ASSIGN_OR_RETURN(s.model, FaceModel::Load(o.model_dir, device));
  if (!o.cache_path.empty()) {
    VF_ASSIGN_OR_RETURN(s.cache, FeatureCache::Open(o.cache_path));
  }
  return s;
}

std::string Pct(double v, int decimals = 2) { return absl::StrFormat("%.*f%%", decimals, 100 * v); }

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

std::vector<LfwImageId> UnionImages(const PairsFile& a, const PairsFile* b) {
  std::vector<LfwImageId> ids = a.Images();
  if (b) {
    const std::vector<LfwImageId> more = b->Images();
    ids.insert(ids.end(), more.begin(), more.end());
  }
  return ids;
}

// The pairs file at `path`, or null when no path is given.
absl::StatusOr<std::unique_ptr<PairsFile>> ReadOptionalPairs(const std::string& path) {
  if (path.empty()) return std::unique_ptr<PairsFile>();
  VF_ASSIGN_OR_RETURN(PairsFile p, ReadPairsFile(path));
  return std::make_unique<PairsFile>(std::move(p));
}

// Embeddings of every image of `pairs` and of `extra` (may be null).
absl::StatusOr<EmbeddedImages> EmbedPairImages(const Session& session, const CommonEvalOptions& o,
                                               const PairsFile& pairs, const PairsFile* extra) {
  LfwImageResolver resolver(o.lfw_dir);
  EmbedOptions eo;
  eo.batch = o.batch;
  eo.progress = o.progress;
  eo.tta = o.tta;
  eo.cache = session.cache.get();
  return EmbedImages(*session.model, UnionImages(pairs, extra), resolver, eo);
}

json FacesJson(const EmbeddedImages& e, const PairsFile& pairs) {
  // Only the images of these pairs (a train set may add others).
  std::vector<std::string> missing;
  int64_t found = 0, several = 0, count = 0;
  for (const LfwImageId& id : pairs.Images()) {
    const ImageRecord& r = e.images[static_cast<size_t>(e.FindImage(id))];
    ++count;
    if (r.fallback) {
      missing.push_back(r.id.Key());
    } else {
      ++found;
    }
    if (r.faces_found > 1) ++several;
  }
  return {{"images", count},
          {"with_face", found},
          {"with_several_faces", several},
          {"selection", "the face whose box centre is nearest the image centre"},
          {"without_face", missing.size()},
          {"without_face_images", missing},
          {"without_face_handling", e.fallback_method}};
}

json RatesJson(const Rates& r) { return {{"tar", RoundDigits(r.tar, 6)}, {"far", RoundDigits(r.far, 6)}}; }

json CrossValidationJson(const CrossValidation& cv) {
  json folds = json::array();
  for (const FoldResult& f : cv.folds) {
    folds.push_back({{"fold", f.fold + 1},
                     {"pairs", f.pairs},
                     {"threshold", RoundDigits(f.threshold, 6)},
                     {"accuracy", RoundDigits(f.accuracy, 6)},
                     {"tar", RoundDigits(f.rates.tar, 6)},
                     {"far", RoundDigits(f.rates.far, 6)}});
  }
  return {{"mean_accuracy", RoundDigits(cv.mean_accuracy, 6)},
          {"std_accuracy", RoundDigits(cv.std_accuracy, 6)},
          {"std_error_accuracy", RoundDigits(cv.std_error_accuracy, 6)},
          {"mean_threshold", RoundDigits(cv.mean_threshold, 6)},
          {"folds", folds}};
}

json Stats(const VerificationScores& s, bool same) {
  double sum = 0, lo = INFINITY, hi = -INFINITY;
  int64_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.same()[i] != same) continue;
    const double v = s.scores()[i];
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    ++n;
  }
  return {{"pairs", n},
          {"mean", RoundDigits(sum / static_cast<double>(n), 6)},
          {"min", RoundDigits(lo, 6)},
          {"max", RoundDigits(hi, 6)}};
}

json PooledJson(const VerificationScores& s) {
  const EqualErrorRate eer = s.Eer();
  json tar = json::array();
  for (const double far : kOperatingFars) {
    const FarOperatingPoint op = s.AtFar(far);
    tar.push_back({{"target_far", far},
                   {"tar", RoundDigits(op.tar, 6)},
                   {"far", RoundDigits(op.far, 6)},
                   {"false_accepts", op.false_accepts},
                   {"threshold", RoundDigits(op.threshold, 6)}});
  }
  json roc = json::array();
  for (int e = -40; e <= 0; ++e) {  // FAR 1e-4 .. 1, ten points a decade
    const FarOperatingPoint op = s.AtFar(std::pow(10.0, e / 10.0));
    roc.push_back({{"far", RoundDigits(op.far, 6)},
                   {"tar", RoundDigits(op.tar, 6)},
                   {"threshold", RoundDigits(op.threshold, 6)}});
  }
  return {{"pairs", s.size()},
          {"auc", RoundDigits(s.Auc(), 6)},
          {"eer", RoundDigits(eer.rate, 6)},
          {"eer_threshold", RoundDigits(eer.threshold, 6)},
          {"tar_at_far", tar},
          {"similarity_same", Stats(s, true)},
          {"similarity_different", Stats(s, false)},
          {"roc_sampled", roc}};
}

std::vector<std::string> PooledNotes(const VerificationScores& s) {
  std::vector<std::string> notes = {absl::StrFormat("AUC %.4f", s.Auc()), absl::StrCat("EER ", Pct(s.Eer().rate))};
  for (const double far : kOperatingFars) {
    notes.push_back(absl::StrFormat("TAR %s at FAR %g", Pct(s.AtFar(far).tar), far));
  }
  return notes;
}

// The pairs the protocol got wrong, hardest first, with what a person needs to look at them.
json MisclassifiedJson(const PairsFile& pairs, const VerificationScores& scores, const std::vector<double>& threshold,
                       const EmbeddedImages& embedded) {
  std::vector<size_t> wrong;
  for (size_t i = 0; i < pairs.pairs.size(); ++i) {
    if ((scores.scores()[i] > threshold[i]) != pairs.pairs[i].same) wrong.push_back(i);
  }
  std::sort(wrong.begin(), wrong.end(), [&](size_t a, size_t b) {
    return std::abs(scores.scores()[a] - threshold[a]) > std::abs(scores.scores()[b] - threshold[b]);
  });
  json out = json::array();
  for (const size_t i : wrong) {
    const ImagePair& p = pairs.pairs[i];
    auto faces = [&](const LfwImageId& id) {
      const ImageRecord& r = embedded.images[static_cast<size_t>(embedded.FindImage(id))];
      return r.fallback ? std::string("none (fallback)") : std::to_string(r.faces_found);
    };
    out.push_back({{"line", p.line},
                   {"fold", p.fold + 1},
                   {"same", p.same},
                   {"a", p.a.Key()},
                   {"b", p.b.Key()},
                   {"faces_a", faces(p.a)},
                   {"faces_b", faces(p.b)},
                   {"score", RoundDigits(scores.scores()[i], 6)},
                   {"threshold", RoundDigits(threshold[i], 6)}});
  }
  return out;
}

// Whether `spec` cuts the same chips as `bundle`, whatever the order its terms were written in.
bool SameViews(const std::string& spec, const TtaConfig& bundle) {
  const auto parsed = ParseTta(spec);
  if (!parsed.ok()) return false;
  std::vector<std::string> a, b;
  for (const ChipView& v : parsed->views) a.push_back(v.Key());
  for (const ChipView& v : bundle.views) b.push_back(v.Key());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

json ModelJson(const FaceModel& m) {
  return {{"id", m.model_id()}, {"dir", DisplayPath(m.bundle_dir())}, {"description", m.spec().description}};
}

json TestTimeJson(const EmbeddedImages& e) {
  json views = json::array();
  for (const ChipView& v : e.tta.views) views.push_back(v.Key());
  return {{"spec", e.tta.spec}, {"chips_per_image", e.tta.views.size()}, {"views", views}};
}

json TimingJson(const EmbeddedImages& e, int threads) {
  return {{"threads", threads},
          {"cpu", CpuModel()},
          {"hardware_threads", std::thread::hardware_concurrency()},
          {"detections_computed", e.detections_computed},
          {"detections_cached", e.detections_cached},
          {"detect_ms_per_image",
           e.detections_computed ? RoundDigits(1000 * e.detect_seconds / e.detections_computed, 1) : 0.0},
          {"chips_computed", e.chips_computed},
          {"chips_cached", e.chips_cached},
          {"backbone_ms_per_chip", e.chips_computed ? RoundDigits(1000 * e.embed_seconds / e.chips_computed, 2) : 0.0}};
}

absl::Status WriteJson(const json& j, const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  return WriteFileAtomically(path, j.dump(2) + "\n");
}

std::string DescribeFaces(const std::vector<FaceDetection>& faces, int central) {
  std::string out;
  for (size_t i = 0; i < faces.size(); ++i) {
    const FaceDetection& f = faces[i];
    absl::StrAppendFormat(&out, "  %s face %d: box (%.1f, %.1f)-(%.1f, %.1f) %.0fx%.0f  score %.4f\n",
                          static_cast<int>(i) == central ? "*" : " ", i + 1, f.box.x1, f.box.y1, f.box.x2, f.box.y2,
                          f.box.width(), f.box.height(), f.score);
    static const char* kNames[] = {"left eye", "right eye", "nose", "mouth left", "mouth right"};
    std::vector<std::string> pts;
    for (size_t k = 0; k < 5; ++k) {
      pts.push_back(absl::StrFormat("%s (%.1f, %.1f)", kNames[k], f.landmarks[k].x, f.landmarks[k].y));
    }
    absl::StrAppend(&out, "      ", absl::StrJoin(pts, ", "), "\n");
  }
  return out;
}

}  // namespace

std::string DisplayCommandLine(const std::vector<std::string>& args) {
  std::vector<std::string> shown;
  for (const std::string& arg : args) {
    if (shown.empty()) {
      shown.push_back(fs::path(arg).filename().string());  // the tool, wherever it was built
      continue;
    }
    // Only absolute paths name a machine's folders; a relative one is already what the user typed.
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos && arg.compare(eq + 1, 1, "/") == 0) {
      shown.push_back(absl::StrCat(arg.substr(0, eq + 1), DisplayPath(arg.substr(eq + 1))));
    } else {
      shown.push_back(arg.rfind('/', 0) == 0 ? DisplayPath(arg) : arg);
    }
  }
  return absl::StrJoin(shown, " ");
}

std::string DataSetName(const std::string& pairs_path) {
  std::error_code ec;
  const fs::path full = fs::absolute(pairs_path, ec).lexically_normal();
  return ec ? std::string() : full.parent_path().filename().string();
}

std::string DefaultCachePath() {
  const char* dir = std::getenv("VERIFACE_CACHE_DIR");
  if (dir && *dir) return (fs::path(dir) / "eval.sqlite").string();
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return (fs::path(xdg) / "veriface" / "eval.sqlite").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : ".") / ".cache" / "veriface" / "eval.sqlite").string();
}

absl::Status WriteVerificationPlots(const VerificationScores& scores, double threshold, const std::string& title,
                                    const std::string& subtitle, const std::vector<std::string>& notes,
                                    const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create plot folder '", dir, "': ", ec.message()));

  // ROC with a log FAR axis down to the smallest FAR the different pairs can show.
  const double far_floor =
      std::pow(10.0, std::floor(std::log10(1.0 / static_cast<double>(scores.num_different())) + 1e-9));
  plot::Chart roc;
  roc.title = title.empty() ? "ROC" : absl::StrCat(title, ": ROC");
  roc.subtitle = subtitle;
  roc.x = {"false accept rate (different people accepted)", true, far_floor, 1.0, true};
  plot::LineSeries curve;
  curve.label = absl::StrFormat("ROC, %d same + %d different pairs", scores.num_same(), scores.num_different());
  double tar_floor = 1;
  for (const RocPoint& p : scores.Roc()) {
    curve.x.push_back(p.far);
    curve.y.push_back(p.tar);
    if (p.far <= far_floor) tar_floor = p.tar;
  }
  if (tar_floor >= 1) tar_floor = 0.9;
  const double tar_min = std::max(0.0, std::floor((tar_floor - 0.02) * 20) / 20);
  // A little room above 100% so that a curve along the top stays visible.
  roc.y = {"true accept rate (same person accepted)", false, tar_min, 1.0 + (1.0 - tar_min) * 0.015, true};
  roc.lines.push_back(curve);
  const Rates at = scores.RatesAt(threshold);
  plot::LineSeries point;
  point.label = absl::StrFormat("threshold %.4f: TAR %s, FAR %s", threshold, Pct(at.tar), Pct(at.far, 3));
  point.x = {std::max(at.far, far_floor)};
  point.y = {at.tar};
  point.color = plot::PaletteColor(1);
  point.width = 2.5;
  point.markers = true;
  roc.lines.push_back(point);
  for (const double far : kOperatingFars) {
    roc.references.push_back({true, far, absl::StrFormat("FAR %g", far), {120, 120, 120}, true, true});
  }
  roc.notes = notes;
  roc.legend = plot::Corner::kBottomRight;
  VF_RETURN_IF_ERROR(plot::WritePng(roc, (fs::path(dir) / "roc.png").string()));

  plot::Chart hist;
  hist.title = title.empty() ? "Similarity" : absl::StrCat(title, ": similarity of pairs");
  hist.subtitle = subtitle;
  hist.x.label = "cosine similarity of the two embeddings";
  hist.y.label = "pairs";
  double lo = INFINITY;
  for (const double v : scores.scores()) lo = std::min(lo, v);
  hist.x.min = std::floor(lo * 50) / 50;
  hist.x.max = 1.0;
  plot::HistogramSeries same, different;
  same.label = absl::StrFormat("same person (%d pairs)", scores.num_same());
  different.label = absl::StrFormat("different people (%d pairs)", scores.num_different());
  different.color = plot::PaletteColor(1);
  for (size_t i = 0; i < scores.size(); ++i) (scores.same()[i] ? same : different).values.push_back(scores.scores()[i]);
  hist.histograms = {different, same};
  hist.histogram_bins = 100;
  const int64_t false_rejects = std::llround((1 - at.tar) * static_cast<double>(scores.num_same()));
  const int64_t false_accepts = std::llround(at.far * static_cast<double>(scores.num_different()));
  hist.references.push_back({true, threshold, absl::StrFormat("threshold %.4f", threshold), {40, 40, 40}, true});
  hist.notes = {absl::StrFormat("same person below threshold: %d", false_rejects),
                absl::StrFormat("different people above: %d", false_accepts)};
  hist.legend = plot::Corner::kTopLeft;
  return plot::WritePng(hist, (fs::path(dir) / "similarity.png").string());
}

absl::StatusOr<json> RunLfw(const LfwOptions& o, std::ostream& out) {
  VF_ASSIGN_OR_RETURN(Session session, Prepare(o.common));
  const FaceModel& model = *session.model;
  const std::string pairs_path =
      o.pairs_path.empty() ? (fs::path(o.common.lfw_dir) / "pairs.txt").string() : o.pairs_path;
  VF_ASSIGN_OR_RETURN(const PairsFile pairs, ReadPairsFile(pairs_path));
  VF_ASSIGN_OR_RETURN(const std::unique_ptr<PairsFile> train, ReadOptionalPairs(o.train_pairs_path));
  VF_ASSIGN_OR_RETURN(const EmbeddedImages embedded, EmbedPairImages(session, o.common, pairs, train.get()));
  VF_ASSIGN_OR_RETURN(const VerificationScores scores, ScorePairs(embedded, pairs));

  json result = {{"tool", "veriface-eval lfw"},
                 {"command", o.common.command_line},
                 {"date", UtcNow()},
                 {"model", ModelJson(model)},
                 {"data",
                  {{"lfw_dir", DisplayPath(o.common.lfw_dir)},
                   {"pairs_file", DisplayPath(pairs_path)},
                   {"folds", pairs.num_folds},
                   {"pairs_per_class_per_fold", pairs.pairs_per_class},
                   {"pairs", pairs.pairs.size()}}},
                 {"faces", FacesJson(embedded, pairs)},
                 {"test_time", TestTimeJson(embedded)},
                 {"score", "cosine similarity of unit-length embeddings; a pair is 'same' when it is > the threshold"}};

  std::string headline;
  double threshold = 0;
  std::vector<double> pair_threshold;  // the threshold each pair was judged at by the headline protocol
  if (train) {
    VF_ASSIGN_OR_RETURN(const VerificationScores train_scores, ScorePairs(embedded, *train));
    const ThresholdChoice choice = train_scores.BestAccuracyThreshold();
    threshold = choice.threshold;
    const double accuracy = scores.AccuracyAt(threshold);
    result["protocol"] = "threshold of best accuracy on the training pairs, applied to these pairs";
    result["train"] = {{"pairs_file", DisplayPath(o.train_pairs_path)},
                       {"pairs", train->pairs.size()},
                       {"threshold", RoundDigits(threshold, 6)},
                       {"train_accuracy", RoundDigits(choice.accuracy, 6)}};
    result["test"] = {{"accuracy", RoundDigits(accuracy, 6)}, {"rates", RatesJson(scores.RatesAt(threshold))}};
    headline = absl::StrFormat("accuracy %s at threshold %.4f chosen on %s", Pct(accuracy), threshold,
                               fs::path(o.train_pairs_path).filename().string());
    pair_threshold.assign(scores.size(), threshold);
  }
  if (pairs.num_folds >= 2) {
    VF_ASSIGN_OR_RETURN(const CrossValidation cv, CrossValidate(scores, pairs.Folds()));
    result["cross_validation"] = CrossValidationJson(cv);
    if (!train) {
      result["protocol"] = absl::StrCat(pairs.num_folds, "-fold: for each fold, the threshold of best accuracy on the ",
                                        "other folds; mean and population standard deviation of the fold accuracies");
      threshold = cv.mean_threshold;
      headline = absl::StrFormat("accuracy %s +- %s (%d-fold; mean threshold %.4f)", Pct(cv.mean_accuracy),
                                 Pct(cv.std_accuracy), pairs.num_folds, cv.mean_threshold);
      for (const ImagePair& p : pairs.pairs) pair_threshold.push_back(cv.folds[static_cast<size_t>(p.fold)].threshold);
    }
  }
  if (headline.empty()) {
    const ThresholdChoice self = scores.BestAccuracyThreshold();
    threshold = self.threshold;
    result["protocol"] =
        "one fold and no --train-pairs: best accuracy with the threshold chosen on these same pairs "
        "(optimistic; pass --train-pairs for an honest number)";
    result["self_tuned"] = {{"threshold", RoundDigits(threshold, 6)}, {"accuracy", RoundDigits(self.accuracy, 6)}};
    headline = absl::StrFormat("accuracy %s at threshold %.4f tuned on these pairs (optimistic)", Pct(self.accuracy),
                               threshold);
    pair_threshold.assign(scores.size(), threshold);
  }
  result["misclassified"] = MisclassifiedJson(pairs, scores, pair_threshold, embedded);
  result["all_pairs"] = PooledJson(scores);

  if (!model.spec().thresholds.empty()) {
    json at = json::object();
    for (const auto& [name, t] : model.spec().thresholds) {
      VF_ASSIGN_OR_RETURN(const CrossValidation cv, EvaluateFoldsAt(scores, pairs.Folds(), t));
      at[name] = {{"threshold", t},
                  {"mean_accuracy", RoundDigits(cv.mean_accuracy, 6)},
                  {"std_accuracy", RoundDigits(cv.std_accuracy, 6)},
                  {"rates", RatesJson(scores.RatesAt(t))}};
    }
    result["at_bundle_thresholds"] = at;
    result["at_bundle_thresholds_note"] = absl::StrCat("thresholds from model.json (calibrated with test-time '",
                                                       model.spec().calibration.value("test_time", std::string("?")),
                                                       "'); this run used '", embedded.tta.spec, "'");
  }
  result["timing"] = TimingJson(embedded, o.common.threads);

  const json& faces = result["faces"];
  out << absl::StrFormat("%s: %d pairs in %d fold(s), %d images, model %s\n", pairs_path, pairs.pairs.size(),
                         pairs.num_folds, faces["images"].get<int64_t>(), model.model_id());
  out << absl::StrFormat("  faces: found in %d images (%d with several: the central one used); none in %d",
                         faces["with_face"].get<int64_t>(), faces["with_several_faces"].get<int64_t>(),
                         faces["without_face"].get<int64_t>());
  if (faces["without_face"].get<int64_t>() > 0) {
    out << " (" << absl::StrJoin(faces["without_face_images"].get<std::vector<std::string>>(), ", ")
        << "; fallback: mean landmarks of the found faces)";
  }
  out << "\n";
  out << absl::StrFormat("  test time: %s (%d chips per image)\n", embedded.tta.spec, embedded.tta.views.size());
  out << "  " << headline << "\n";
  if (result.contains("cross_validation")) {
    std::vector<std::string> folds;
    for (const json& f : result["cross_validation"]["folds"]) folds.push_back(Pct(f["accuracy"].get<double>()));
    out << "  per fold: " << absl::StrJoin(folds, " ") << "\n";
  }
  out << "  all pairs: " << absl::StrJoin(PooledNotes(scores), ", ") << "\n";
  out << absl::StrFormat("  misclassified: %d pairs (listed in the JSON, hardest first)\n",
                         result["misclassified"].size());
  if (result.contains("at_bundle_thresholds")) {
    for (const auto& [name, v] : result["at_bundle_thresholds"].items()) {
      out << absl::StrFormat("  at the bundle's %s threshold %.4f: accuracy %s, TAR %s, FAR %s\n", name,
                             v["threshold"].get<double>(), Pct(v["mean_accuracy"].get<double>()),
                             Pct(v["rates"]["tar"].get<double>()), Pct(v["rates"]["far"].get<double>(), 3));
    }
  }
  out << absl::StrFormat("  detection: %d computed, %d cached; chips: %d computed, %d cached\n",
                         embedded.detections_computed, embedded.detections_cached, embedded.chips_computed,
                         embedded.chips_cached);

  if (!o.plots_dir.empty()) {
    std::vector<std::string> notes = {headline.substr(0, headline.find(" ("))};
    for (const std::string& n : PooledNotes(scores)) notes.push_back(n);
    // Named after the pairs file's folder, so that a run on another face set carries that set's name.
    const std::string set = DataSetName(pairs_path), file = fs::path(pairs_path).filename().string();
    const std::string title = set.empty() ? file : absl::StrCat(set, " ", file);
    const std::string subtitle =
        absl::StrFormat("%s, test time '%s', %d images (%d without a face)", model.model_id(), embedded.tta.spec,
                        faces["images"].get<int64_t>(), faces["without_face"].get<int64_t>());
    VF_RETURN_IF_ERROR(WriteVerificationPlots(scores, threshold, title, subtitle, notes, o.plots_dir));
    result["plots"] = {DisplayPath((fs::path(o.plots_dir) / "roc.png").string()),
                       DisplayPath((fs::path(o.plots_dir) / "similarity.png").string())};
    out << "  plots: " << o.plots_dir << "/{roc,similarity}.png\n";
  }
  if (!o.out_json.empty()) {
    VF_RETURN_IF_ERROR(WriteJson(result, o.out_json));
    out << "  results: " << o.out_json << "\n";
  }
  return result;
}

absl::StatusOr<json> RunCalibrate(const CalibrateOptions& o, std::ostream& out) {
  VF_ASSIGN_OR_RETURN(Session session, Prepare(o.common));
  const FaceModel& model = *session.model;
  const std::string bundle_tta = model.spec().TestTimeSpec();
  if (!o.common.tta.empty() && !SameViews(o.common.tta, model.test_time()) && !o.dry_run) {
    return absl::FailedPreconditionError(
        absl::StrCat("thresholds must be calibrated with the test-time augmentation the bundle serves with ('",
                     bundle_tta, "'), not '", o.common.tta, "'; use --dry-run to only look"));
  }
  const std::string pairs_path =
      o.pairs_path.empty() ? (fs::path(o.common.lfw_dir) / "pairsDevTrain.txt").string() : o.pairs_path;
  VF_ASSIGN_OR_RETURN(const PairsFile pairs, ReadPairsFile(pairs_path));
  std::string test_path = o.test_pairs_path;
  std::error_code ec;
  if (test_path.empty()) {
    const fs::path guess = fs::path(o.common.lfw_dir) / "pairsDevTest.txt";
    if (fs::is_regular_file(guess, ec) && fs::absolute(guess, ec) != fs::absolute(pairs_path, ec)) {
      test_path = guess.string();
    }
  }
  if (test_path == "none") test_path.clear();
  VF_ASSIGN_OR_RETURN(const std::unique_ptr<PairsFile> test, ReadOptionalPairs(test_path));
  VF_ASSIGN_OR_RETURN(const EmbeddedImages embedded, EmbedPairImages(session, o.common, pairs, test.get()));
  VF_ASSIGN_OR_RETURN(const VerificationScores scores, ScorePairs(embedded, pairs));

  const fs::path pairs_folder = fs::path(pairs_path).parent_path();
  Calibration calibration =
      Calibrate(scores, {"veriface-eval calibrate",
                         absl::StrCat(fs::path(pairs_path).filename().string(), " in ",
                                      DisplayPath(pairs_folder.empty() ? "." : pairs_folder.string())),
                         embedded.tta.spec});
  const std::map<std::string, double>& thresholds = calibration.thresholds;
  json& record = calibration.record;
  record["command"] = o.common.command_line;
  record["date"] = UtcNow();
  record["faces"] = FacesJson(embedded, pairs);

  out << absl::StrFormat("calibration on %s: %d pairs, %d images (%d without a face), test time '%s'\n", pairs_path,
                         pairs.pairs.size(), record["faces"]["images"].get<int64_t>(),
                         record["faces"]["without_face"].get<int64_t>(), embedded.tta.spec);
  for (const auto& [name, t] : thresholds) {
    const Rates r = scores.RatesAt(t);
    out << absl::StrFormat("  %-14s threshold %.6f  accuracy %s  TAR %s  FAR %s\n", name, t, Pct(scores.AccuracyAt(t)),
                           Pct(r.tar), Pct(r.far, 3));
  }
  if (test) {
    VF_ASSIGN_OR_RETURN(const VerificationScores held_out, ScorePairs(embedded, *test));
    out << absl::StrFormat("held-out check on %s (%d pairs):\n", test_path, test->pairs.size());
    for (const auto& [name, t] : thresholds) {
      const Rates r = held_out.RatesAt(t);
      out << absl::StrFormat("  %-14s accuracy %s  TAR %s  FAR %s\n", name, Pct(held_out.AccuracyAt(t)), Pct(r.tar),
                             Pct(r.far, 3));
    }
    record["held_out_check"] = {{"pairs_file", DisplayPath(test_path)},
                                {"pairs", test->pairs.size()},
                                {"results", EvaluateThresholds(held_out, thresholds)}};
  }

  VF_ASSIGN_OR_RETURN(ModelSpec spec, ReadModelSpec(o.common.model_dir));
  VF_RETURN_IF_ERROR(ApplyCalibration(calibration, o.default_operating_point, &spec));
  if (o.dry_run) {
    out << "dry run: " << o.common.model_dir << "/model.json left unchanged\n";
  } else {
    VF_RETURN_IF_ERROR(WriteModelSpec(o.common.model_dir, spec));
    out << absl::StrFormat("wrote thresholds to %s/model.json (default operating point '%s')\n", o.common.model_dir,
                           spec.default_operating_point);
  }
  return record;
}

absl::Status RunPair(const std::string& model_dir, const std::string& image_a, const std::string& image_b, int threads,
                     std::ostream& out, const std::string& device) {
  if (threads < 0) return absl::InvalidArgumentError(absl::StrCat("--threads must be >= 0, got ", threads));
  SetTorchThreads(threads);
  VF_ASSIGN_OR_RETURN(const torch::Device torch_device, ParseDevice(device));
  VF_ASSIGN_OR_RETURN(const auto model, FaceModel::Load(model_dir, torch_device));
  std::vector<FaceViews> views;
  for (const std::string& path : {image_a, image_b}) {
    VF_ASSIGN_OR_RETURN(const cv::Mat rgb, LoadImageFile(path));
    auto faces = model->Detect(rgb, model->spec().detector_defaults);
    if (!faces.ok()) return absl::Status(faces.status().code(), absl::StrCat(path, ": ", faces.status().message()));
    const int central = SelectFace(*faces, FaceSelection::kCentral, rgb.cols, rgb.rows);
    out << absl::StrFormat("%s: %dx%d, %d face%s%s\n", path, rgb.cols, rgb.rows, faces->size(),
                           faces->size() == 1 ? "" : "s", faces->size() > 1 ? " (* = central, compared)" : "");
    out << DescribeFaces(*faces, faces->size() > 1 ? central : -1);
    if (central < 0) return absl::NotFoundError(absl::StrCat("no face found in ", path));
    // The bundle's test-time crops, so that the similarity is the one its thresholds were calibrated on.
    views.push_back(model->Cut(rgb, (*faces)[static_cast<size_t>(central)]));
  }
  VF_ASSIGN_OR_RETURN(const torch::Tensor emb, model->Embed(views));
  const double similarity = (emb[0] * emb[1]).sum().item<double>();
  out << absl::StrFormat("cosine similarity %.4f\n", similarity);
  const auto threshold = model->spec().DefaultThreshold();
  if (threshold.ok()) {
    // The design's rule for the service: a match when the similarity reaches the threshold.
    out << absl::StrFormat("%s (threshold %.4f at operating point '%s')\n",
                           similarity >= *threshold ? "MATCH: same person" : "NO MATCH: different people", *threshold,
                           model->spec().default_operating_point);
  } else {
    out << "no decision: the bundle has no calibrated thresholds yet (run `veriface-eval calibrate --model "
        << model_dir << " --lfw DIR`)\n";
  }
  return absl::OkStatus();
}

}  // namespace veriface
