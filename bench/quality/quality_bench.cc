// Face quality against recognition errors, on LFW (bench/quality/README.md says how the levels were chosen).
//
//   quality_bench sweep  --pairs ../shared/data/lfw/pairsDevTrain.txt --max-pairs 600 --out bench/results/quality_sweep
//     View 1: the second image of each pair degraded step by step (blur, downscale, darken, overexpose); for
//     each family, the pair error rate at the bundle's threshold against the measurement it should move, and
//     the bounds where the error rate passes the clean rate by 1 and by 5 percentage points: the proposed
//     QualityPolicy.
//   quality_bench levels --pairs ../shared/data/lfw/pairs.txt --out bench/results/quality_view2
//     A pairs file as it is: each pair at the worse of its two faces' levels under QualityPolicy's defaults,
//     and the error rate per level and per reason (table, JSON and plot).
//
// The threshold is the bundle's default operating point, calibrated on View 1 DevTrain: these are the
// decisions the server makes. Faces are the central detection with the bundle's detector defaults, embedded
// with its test-time setting, as the server does.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/index/embedding_cache.h"
#include "core/common/device.h"
#include "core/common/file_util.h"
#include "core/detect/face.h"
#include "core/eval/pairs.h"
#include "core/image/decode.h"
#include "core/model/face_model.h"
#include "core/progress/progress.h"
#include "core/quality/face_quality.h"
#include "trainer/plot/chart.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Options {
  std::string lfw = "../shared/data/lfw";
  std::string model_dir = "models/default";
  std::string pairs;
  std::string out;             // path prefix: <out>.json, <out>.md, <out>.png
  std::string embeddings_out;  // levels: also write every embedded image here (bench/index's cache format)
  bool reuse = false;          // levels: read the embeddings and measurements from embeddings_out instead
  int max_pairs = 0;           // 0: all; else evenly spaced, half same and half different
  int threads = 2;
  int batch = 32;
  std::string command;
};

// One face as the service would see it.
struct SeenFace {
  bool found = false;
  FaceDetection face;
  cv::Mat rgb;
};

absl::StatusOr<SeenFace> See(const FaceModel& model, LfwImageResolver& resolver, const LfwImageId& id, bool keep) {
  const auto path = resolver.Resolve(id);
  if (!path.ok()) return path.status();
  const auto bytes = ReadFileToString(*path);
  if (!bytes.ok()) return bytes.status();
  auto rgb = DecodeImage(*bytes);
  if (!rgb.ok()) return rgb.status();
  const auto faces = model.Detect(*rgb, model.spec().detector_defaults);
  if (!faces.ok()) return faces.status();
  SeenFace seen;
  const int pick = SelectFace(*faces, FaceSelection::kCentral, rgb->cols, rgb->rows);
  if (pick >= 0) {
    seen.found = true;
    seen.face = (*faces)[static_cast<size_t>(pick)];
  }
  seen.rgb = keep || seen.found ? *rgb : cv::Mat();
  return seen;
}

// A progress bar counted up in steps.
struct Counter {
  ProgressBar* bar = nullptr;
  int64_t done = 0;
  void Add(int64_t n) {
    done += n;
    if (bar != nullptr) bar->Update(done);
  }
};

// Unit embeddings of faces cut from images, in batches.
class BatchEmbedder {
 public:
  BatchEmbedder(const FaceModel& model, int batch) : model_(model), batch_(batch) {}
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::pair<const cv::Mat*, FaceDetection>>& faces, Counter* progress) const {
    std::vector<std::vector<float>> out;
    for (size_t begin = 0; begin < faces.size(); begin += static_cast<size_t>(batch_)) {
      const size_t end = std::min(faces.size(), begin + static_cast<size_t>(batch_));
      std::vector<FaceViews> views;
      for (size_t i = begin; i < end; ++i) views.push_back(model_.Cut(*faces[i].first, faces[i].second));
      const auto e = model_.Embed(views);
      if (!e.ok()) return e.status();
      const torch::Tensor t = e->to(torch::kFloat32).contiguous();
      for (int64_t r = 0; r < t.size(0); ++r) {
        const float* row = t[r].data_ptr<float>();
        out.emplace_back(row, row + t.size(1));
      }
      if (progress != nullptr) progress->Add(static_cast<int64_t>(end - begin));
    }
    return out;
  }

 private:
  const FaceModel& model_;
  const int batch_;
};

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

std::vector<ImagePair> Choose(const PairsFile& file, int max_pairs) {
  if (max_pairs <= 0 || max_pairs >= static_cast<int>(file.pairs.size())) return file.pairs;
  std::vector<ImagePair> same, different, chosen;
  for (const ImagePair& p : file.pairs) (p.same ? same : different).push_back(p);
  for (const auto* list : {&same, &different}) {
    const size_t want = std::min(list->size(), static_cast<size_t>(max_pairs / 2));
    for (size_t i = 0; i < want; ++i) chosen.push_back((*list)[i * list->size() / want]);
  }
  return chosen;
}

// ---- sweep

struct Degradation {
  std::string family;  // "blur", "downscale", "dark", "bright"
  double amount = 0;   // sigma, scale, gain, offset
};

// The image degraded, and the clean face's landmarks where they are in it.
std::pair<cv::Mat, FaceDetection> Degrade(const cv::Mat& rgb, const FaceDetection& face, const Degradation& d) {
  cv::Mat out;
  FaceDetection moved = face;
  if (d.family == "blur") {
    cv::GaussianBlur(rgb, out, cv::Size(), d.amount);
  } else if (d.family == "downscale") {
    cv::resize(rgb, out, cv::Size(), d.amount, d.amount, cv::INTER_AREA);
    const double sx = static_cast<double>(out.cols) / rgb.cols, sy = static_cast<double>(out.rows) / rgb.rows;
    // Pixel centres: a point at x maps to (x + 0.5) * s - 0.5.
    for (cv::Point2d& p : moved.landmarks) p = {(p.x + 0.5) * sx - 0.5, (p.y + 0.5) * sy - 0.5};
  } else if (d.family == "dark") {
    rgb.convertTo(out, -1, d.amount);
  } else {  // bright: overexposure, which clips the highlights
    rgb.convertTo(out, -1, 1.0 + d.amount / 255.0, d.amount);
  }
  // Through JPEG at quality 80, as a camera or a web upload would pass a degraded photo on: blocking and
  // ringing hurt small and dark faces more than the clean degradation alone would.
  std::vector<uint8_t> jpeg;
  cv::Mat bgr;
  cv::cvtColor(out, bgr, cv::COLOR_RGB2BGR);
  cv::imencode(".jpg", bgr, jpeg, {cv::IMWRITE_JPEG_QUALITY, 80});
  cv::cvtColor(cv::imdecode(jpeg, cv::IMREAD_COLOR), out, cv::COLOR_BGR2RGB);
  return {out, moved};
}

// The measurement a family moves, and whether larger is better.
double FamilyMeasure(const std::string& family, const QualityMeasures& m) {
  if (family == "blur") return m.sharpness;
  if (family == "downscale") return m.interocular_px;
  return m.brightness;
}
bool LargerIsBetter(const std::string& family) { return family != "bright"; }

struct Point {
  double measure = 0;
  bool error = false;
};

// The error rate as a function of the measure, made monotone (pool-adjacent-violators isotonic regression
// over the points sorted from the good end to the bad end), so that one unlucky pair among good ones cannot
// set a bound; the bound is where the fitted rate first reaches `rate`, halfway between that point and the
// one before. NaN when it never does.
double BoundAt(std::vector<Point> points, bool larger_is_better, double rate) {
  std::sort(points.begin(), points.end(), [&](const Point& a, const Point& b) {
    return larger_is_better ? a.measure > b.measure : a.measure < b.measure;
  });
  struct Block {
    double errors = 0;
    double count = 0;
    size_t first = 0;
    double mean() const { return errors / count; }
  };
  std::vector<Block> blocks;
  for (size_t i = 0; i < points.size(); ++i) {
    blocks.push_back({points[i].error ? 1.0 : 0.0, 1.0, i});
    while (blocks.size() >= 2 && blocks[blocks.size() - 2].mean() > blocks.back().mean()) {
      const Block last = blocks.back();
      blocks.pop_back();
      blocks.back().errors += last.errors;
      blocks.back().count += last.count;
    }
  }
  for (const Block& block : blocks) {
    if (block.mean() >= rate) {
      const size_t i = block.first;
      return i == 0 ? points[0].measure : (points[i - 1].measure + points[i].measure) / 2;
    }
  }
  return std::nan("");
}

// Equal-count bins from the good end to the bad end with their raw error rates, for the record.
json Binned(std::vector<Point> points, bool larger_is_better, int bins) {
  std::sort(points.begin(), points.end(), [&](const Point& a, const Point& b) {
    return larger_is_better ? a.measure > b.measure : a.measure < b.measure;
  });
  json curve = json::array();
  const size_t n = points.size();
  for (int b = 0; b < bins; ++b) {
    const size_t begin = n * static_cast<size_t>(b) / static_cast<size_t>(bins);
    const size_t end = n * static_cast<size_t>(b + 1) / static_cast<size_t>(bins);
    if (end <= begin) continue;
    int64_t errors = 0;
    for (size_t i = begin; i < end; ++i) errors += points[i].error ? 1 : 0;
    curve.push_back({{"from", points[begin].measure},
                     {"to", points[end - 1].measure},
                     {"pairs", end - begin},
                     {"error_rate", static_cast<double>(errors) / static_cast<double>(end - begin)}});
  }
  return curve;
}

// The sweep's record as a table: <out>.md from <out>.json.
int SweepTable(const Options& o) {
  const auto text = ReadFileToString(o.out + ".json");
  if (!text.ok()) {
    std::cerr << text.status().message() << "\n";
    return 1;
  }
  const json r = json::parse(*text);
  std::ofstream md(o.out + ".md");
  md << "# Face quality bounds from degradations of LFW View 1\n\n"
     << "Written by `" << r["command"].get<std::string>() << "` (model `" << r["model"].get<std::string>() << "`), "
     << r["pairs"] << " pairs of " << r["pairs_file"].get<std::string>() << "; the second image of each pair degraded "
     << "and passed through JPEG quality 80. Decisions at " << r["threshold_source"].get<std::string>() << " "
     << absl::StrFormat("%.6f", r["threshold"].get<double>()) << "; clean pair error rate "
     << absl::StrFormat("%.2f%%", 100 * r["clean_error_rate"].get<double>()) << ".\n\n"
     << "| family | amount | median measure | pair error rate |\n|---|---:|---:|---:|\n";
  for (const json& step : r["settings"]) {
    md << "| " << step["family"].get<std::string>() << " | " << step["amount"].get<double>() << " | "
       << absl::StrFormat("%.3f", step["median_measure"].get<double>()) << " | "
       << absl::StrFormat("%.2f%%", 100 * step["error_rate"].get<double>()) << " |\n";
  }
  md << "\nBounds (" << r["rule"].get<std::string>()
     << "):\n\n| family | measure | MEDIUM below/above | LOW below/above |\n"
     << "|---|---|---:|---:|\n";
  for (const auto& [family, f] : r["families"].items()) {
    const auto show = [](const json& v) {
      return v.is_number() ? absl::StrFormat("%.3f", v.get<double>()) : std::string("-");
    };
    md << "| " << family << " | " << f["measure"].get<std::string>() << " | " << show(f["medium_bound"]) << " | "
       << show(f["low_bound"]) << " |\n";
  }
  return 0;
}

int Sweep(const Options& o, const FaceModel& model) {
  const auto file = ReadPairsFile(o.pairs);
  if (!file.ok()) {
    std::cerr << file.status().message() << "\n";
    return 1;
  }
  const std::vector<ImagePair> pairs = Choose(*file, o.max_pairs);
  LfwImageResolver resolver(o.lfw);
  const auto threshold = model.spec().DefaultThreshold();
  if (!threshold.ok()) {
    std::cerr << threshold.status().message() << "\n";
    return 1;
  }
  std::vector<SeenFace> a, b;
  int64_t skipped = 0;
  {
    ProgressBar bar("detect", static_cast<int64_t>(pairs.size()), "pairs", &std::cerr);
    Counter progress{&bar};
    for (const ImagePair& p : pairs) {
      auto fa = See(model, resolver, p.a, true);
      auto fb = See(model, resolver, p.b, true);
      if (!fa.ok() || !fb.ok()) {
        std::cerr << (fa.ok() ? fb.status() : fa.status()).message() << "\n";
        return 1;
      }
      progress.Add(1);
      if (!fa->found || !fb->found) {
        ++skipped;
        a.emplace_back();
        b.emplace_back();
        continue;
      }
      a.push_back(std::move(*fa));
      b.push_back(std::move(*fb));
    }
  }
  std::vector<size_t> usable;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (a[i].found) usable.push_back(i);
  }
  // Each family from barely visible to severe; few steps, as every face costs the bundle's full test-time
  // setting (12 backbone passes for the default bundle).
  const std::vector<Degradation> steps = {
      {"blur", 1.5},       {"blur", 3.0},       {"blur", 5.0},       {"downscale", 0.35}, {"downscale", 0.25},
      {"downscale", 0.18}, {"downscale", 0.13}, {"downscale", 0.09}, {"dark", 0.25},      {"dark", 0.12},
      {"dark", 0.06},      {"bright", 80},      {"bright", 120},     {"bright", 160}};
  const BatchEmbedder embedder(model, o.batch);
  ProgressBar bar("embed", static_cast<int64_t>(usable.size() * (2 + steps.size())), "faces", &std::cerr);
  Counter progress{&bar};
  std::vector<std::pair<const cv::Mat*, FaceDetection>> jobs;
  for (const size_t i : usable) jobs.emplace_back(&a[i].rgb, a[i].face);
  for (const size_t i : usable) jobs.emplace_back(&b[i].rgb, b[i].face);
  const auto clean = embedder.Embed(jobs, &progress);
  if (!clean.ok()) {
    std::cerr << clean.status().message() << "\n";
    return 1;
  }
  const size_t n = usable.size();
  const auto is_error = [&](size_t k, double similarity) {
    return (similarity >= *threshold) != pairs[usable[k]].same;
  };
  int64_t clean_errors = 0;
  std::map<std::string, std::vector<Point>> points;  // per family, the clean images included
  std::vector<QualityMeasures> clean_measures(n);
  for (size_t k = 0; k < n; ++k) {
    const bool err = is_error(k, Dot((*clean)[k], (*clean)[n + k]));
    clean_errors += err ? 1 : 0;
    clean_measures[k] = MeasureFace(b[usable[k]].rgb, b[usable[k]].face);
    for (const char* f : {"blur", "downscale", "dark", "bright"})
      points[f].push_back({FamilyMeasure(f, clean_measures[k]), err});
  }
  const double clean_rate = static_cast<double>(clean_errors) / static_cast<double>(n);
  json settings = json::array();
  for (const Degradation& d : steps) {
    std::vector<cv::Mat> images(n);
    std::vector<std::pair<const cv::Mat*, FaceDetection>> degraded;
    std::vector<QualityMeasures> measures(n);
    for (size_t k = 0; k < n; ++k) {
      auto [img, face] = Degrade(b[usable[k]].rgb, b[usable[k]].face, d);
      images[k] = std::move(img);
      measures[k] = MeasureFace(images[k], face);
      degraded.emplace_back(&images[k], face);
    }
    const auto e = embedder.Embed(degraded, &progress);
    if (!e.ok()) {
      std::cerr << e.status().message() << "\n";
      return 1;
    }
    int64_t errors = 0;
    std::vector<double> values;
    for (size_t k = 0; k < n; ++k) {
      const bool err = is_error(k, Dot((*clean)[k], (*e)[k]));
      errors += err ? 1 : 0;
      const double v = FamilyMeasure(d.family, measures[k]);
      values.push_back(v);
      points[d.family].push_back({v, err});
    }
    std::sort(values.begin(), values.end());
    settings.push_back({{"family", d.family},
                        {"amount", d.amount},
                        {"median_measure", values[values.size() / 2]},
                        {"error_rate", static_cast<double>(errors) / static_cast<double>(n)}});
  }
  bar.Finish();

  json families = json::object();
  const std::map<std::string, std::string> measure_name = {
      {"blur", "sharpness"}, {"downscale", "interocular_px"}, {"dark", "brightness"}, {"bright", "brightness"}};
  constexpr int kBins = 16;
  for (const auto& [family, pts] : points) {
    const double medium = BoundAt(pts, LargerIsBetter(family), clean_rate + 0.01);
    const double low = BoundAt(pts, LargerIsBetter(family), clean_rate + 0.05);
    json raw = json::array();
    for (const Point& p : pts) raw.push_back({p.measure, p.error ? 1 : 0});
    families[family] = {{"measure", measure_name.at(family)},
                        {"medium_bound", medium},
                        {"low_bound", low},
                        {"points", pts.size()},
                        {"binned", Binned(pts, LargerIsBetter(family), kBins)},
                        {"raw_points", raw}};
  }
  const json result = {{"command", o.command},
                       {"model", model.model_id()},
                       {"pairs_file", fs::path(o.pairs).filename().string()},
                       {"pairs", n},
                       {"pairs_without_a_face", skipped},
                       {"threshold", *threshold},
                       {"threshold_source", model.spec().default_operating_point},
                       {"clean_error_rate", clean_rate},
                       {"rule",
                        "isotonic fit of the pair error rate against the measure; medium bound where it reaches "
                        "the clean rate + 1 point, low bound where it reaches the clean rate + 5 points"},
                       {"settings", settings},
                       {"families", families}};
  std::ofstream(o.out + ".json") << result.dump(2) << "\n";
  return SweepTable(o);
}

// ---- pose

// The estimated head pose over every image of a pairs file (detection only): LFW's photos are portraits,
// so a sound estimator puts the median yaw and pitch near 0; the pitch zero was set from this on View 1.
int PoseSpread(const Options& o, const FaceModel& model) {
  const auto file = ReadPairsFile(o.pairs);
  if (!file.ok()) {
    std::cerr << file.status().message() << "\n";
    return 1;
  }
  const std::vector<LfwImageId> ids = file->Images();
  LfwImageResolver resolver(o.lfw);
  std::vector<double> yaw, pitch, roll;
  ProgressBar bar("detect", static_cast<int64_t>(ids.size()), "images", &std::cerr);
  Counter progress{&bar};
  for (const LfwImageId& id : ids) {
    const auto seen = See(model, resolver, id, false);
    if (!seen.ok()) {
      std::cerr << seen.status().message() << "\n";
      return 1;
    }
    progress.Add(1);
    if (!seen->found) continue;
    const QualityMeasures m = MeasureFace(seen->rgb, seen->face);
    yaw.push_back(m.yaw_deg);
    pitch.push_back(m.pitch_deg);
    roll.push_back(m.roll_deg);
  }
  bar.Finish();
  const auto spread = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const auto at = [&](double q) { return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))]; };
    return json{{"p5", at(0.05)}, {"p25", at(0.25)}, {"median", at(0.5)}, {"p75", at(0.75)}, {"p95", at(0.95)}};
  };
  const json result = {{"command", o.command}, {"model", model.model_id()},
                       {"pairs_file", fs::path(o.pairs).filename().string()}, {"faces", yaw.size()},
                       {"yaw_deg", spread(yaw)}, {"pitch_deg", spread(pitch)}, {"roll_deg", spread(roll)}};
  std::ofstream(o.out + ".json") << result.dump(2) << "\n";
  std::cout << result.dump(2) << "\n";
  return 0;
}

// ---- levels

struct LevelCount {
  int64_t pairs = 0, same = 0, errors = 0, false_rejects = 0, false_accepts = 0;
  void Add(bool same_pair, bool accepted) {
    ++pairs;
    same += same_pair ? 1 : 0;
    if (accepted != same_pair) {
      ++errors;
      (same_pair ? false_rejects : false_accepts) += 1;
    }
  }
  json ToJson() const {
    return {{"pairs", pairs},
            {"same", same},
            {"errors", errors},
            {"error_rate", pairs > 0 ? static_cast<double>(errors) / static_cast<double>(pairs) : 0.0},
            {"false_rejects", false_rejects},
            {"false_accepts", false_accepts}};
  }
};

int Levels(const Options& o, const FaceModel& model) {
  const auto file = ReadPairsFile(o.pairs);
  if (!file.ok()) {
    std::cerr << file.status().message() << "\n";
    return 1;
  }
  const std::vector<ImagePair> pairs = Choose(*file, o.max_pairs);
  const auto threshold = model.spec().DefaultThreshold();
  if (!threshold.ok()) {
    std::cerr << threshold.status().message() << "\n";
    return 1;
  }
  std::vector<LfwImageId> ids;
  for (const ImagePair& p : pairs) ids.insert(ids.end(), {p.a, p.b});
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  LfwImageResolver resolver(o.lfw);
  const QualityPolicy policy;
  struct Seen {
    bool found = false;
    QualityMeasures measures;
    FaceQuality quality;  // under `policy`
    std::vector<float> embedding;
  };
  std::map<LfwImageId, Seen> seen;
  std::map<std::string, Seen> by_key;  // --reuse: what the cache holds, by image key
  // The measurements are kept beside the embeddings, so that a table under other bounds (--reuse) needs no
  // face pipeline: the default bundle embeds about 2.4 faces a second on 2 cores.
  const std::string measures_path = o.embeddings_out + ".measures.json";
  if (o.reuse) {
    uint32_t dim = 0;
    const auto records = bench::ReadEmbeddingCache(o.embeddings_out, &dim);
    const auto text = ReadFileToString(measures_path);
    if (!records.ok() || !text.ok()) {
      std::cerr << (records.ok() ? text.status() : records.status()).message() << "\n";
      return 1;
    }
    const json measures = json::parse(*text);
    for (const bench::LfwEmbedding& r : *records) {
      const json& m = measures.at(r.path);
      Seen s;
      s.found = true;
      s.embedding = r.embedding;
      s.measures = {m.at("interocular_px"), m.at("sharpness"),  m.at("yaw_deg"),       m.at("pitch_deg"),
                    m.at("roll_deg"),       m.at("brightness"), m.at("detector_score")};
      by_key[r.path] = s;
    }
    for (const LfwImageId& id : ids) seen[id] = by_key.count(id.Key()) ? by_key[id.Key()] : Seen{};
  } else {
    const BatchEmbedder embedder(model, o.batch);
    ProgressBar bar("embed", static_cast<int64_t>(ids.size()), "images", &std::cerr);
    Counter progress{&bar};
    for (size_t begin = 0; begin < ids.size(); begin += static_cast<size_t>(o.batch)) {
      const size_t end = std::min(ids.size(), begin + static_cast<size_t>(o.batch));
      std::vector<SeenFace> faces;
      std::vector<std::pair<const cv::Mat*, FaceDetection>> jobs;
      std::vector<const LfwImageId*> owners;
      faces.reserve(end - begin);
      for (size_t i = begin; i < end; ++i) {
        auto f = See(model, resolver, ids[i], false);
        if (!f.ok()) {
          std::cerr << ids[i].Key() << ": " << f.status().message() << "\n";
          return 1;
        }
        faces.push_back(std::move(*f));
        Seen& s = seen[ids[i]];
        s.found = faces.back().found;
        if (s.found) {
          s.measures = MeasureFace(faces.back().rgb, faces.back().face);
          jobs.emplace_back(&faces.back().rgb, faces.back().face);
          owners.push_back(&ids[i]);
        }
      }
      const auto e = embedder.Embed(jobs, nullptr);
      if (!e.ok()) {
        std::cerr << e.status().message() << "\n";
        return 1;
      }
      for (size_t k = 0; k < owners.size(); ++k) seen[*owners[k]].embedding = (*e)[k];
      progress.Add(static_cast<int64_t>(end - begin));
    }
    bar.Finish();
    if (!o.embeddings_out.empty()) {
      std::vector<bench::LfwEmbedding> records;
      json measures = json::object();
      for (const auto& [id, s] : seen) {
        if (!s.found) continue;
        records.push_back({id.name, id.Key(), s.embedding});
        const QualityMeasures& m = s.measures;
        measures[id.Key()] = {
            {"interocular_px", m.interocular_px}, {"sharpness", m.sharpness}, {"yaw_deg", m.yaw_deg},
            {"pitch_deg", m.pitch_deg},           {"roll_deg", m.roll_deg},   {"brightness", m.brightness},
            {"detector_score", m.detector_score}};
      }
      const absl::Status written =
          bench::WriteEmbeddingCache(o.embeddings_out, static_cast<uint32_t>(model.spec().embedding_dim), records);
      if (!written.ok()) {
        std::cerr << written.message() << "\n";
        return 1;
      }
      std::ofstream(measures_path) << measures.dump() << "\n";
    }
  }
  for (auto& [id, s] : seen) s.quality = RateFace(s.measures, policy);

  std::map<int, LevelCount> by_level;  // 0: a face not found
  std::map<std::string, LevelCount> by_reason;
  std::map<int, int64_t> image_levels;
  for (const auto& [id, s] : seen) image_levels[s.found ? static_cast<int>(s.quality.level) : 0] += 1;
  LevelCount all;
  for (const ImagePair& p : pairs) {
    const Seen& sa = seen.at(p.a);
    const Seen& sb = seen.at(p.b);
    if (!sa.found || !sb.found) {
      by_level[0].pairs += 1;
      continue;
    }
    const bool accepted = Dot(sa.embedding, sb.embedding) >= *threshold;
    const int level = std::min(static_cast<int>(sa.quality.level), static_cast<int>(sb.quality.level));
    by_level[level].Add(p.same, accepted);
    all.Add(p.same, accepted);
    std::map<std::string, bool> reasons;
    for (const Seen* s : {&sa, &sb}) {
      for (const QualityIssue& i : s->quality.issues) reasons[QualityReasonName(i.reason)] = true;
    }
    for (const auto& [reason, unused] : reasons) by_reason[reason].Add(p.same, accepted);
  }
  const char* names[] = {"no face", "LOW", "MEDIUM", "HIGH"};
  json levels = json::object(), reasons = json::object(), images = json::object();
  for (const auto& [level, c] : by_level) levels[names[level]] = c.ToJson();
  for (const auto& [reason, c] : by_reason) reasons[reason] = c.ToJson();
  for (const auto& [level, count] : image_levels) images[names[level]] = count;
  const json result = {{"command", o.command},
                       {"model", model.model_id()},
                       {"pairs_file", fs::path(o.pairs).filename().string()},
                       {"threshold", *threshold},
                       {"threshold_source", model.spec().default_operating_point},
                       {"pairs", all.ToJson()},
                       {"images_by_level", images},
                       {"by_pair_level", levels},
                       {"by_reason", reasons}};
  std::ofstream(o.out + ".json") << result.dump(2) << "\n";

  std::ofstream md(o.out + ".md");
  md << "# Verification errors by face quality: " << fs::path(o.pairs).filename().string() << "\n\n"
     << "Written by `" << o.command << "` (model `" << model.model_id() << "`). A pair is at the worse of its two"
     << " faces' levels (QualityPolicy's defaults); decisions at the bundle's " << model.spec().default_operating_point
     << " threshold " << absl::StrFormat("%.6f", *threshold) << ", calibrated on View 1.\n\n"
     << "| pair level | pairs | errors | error rate | false rejects | false accepts "
        "|\n|---|---:|---:|---:|---:|---:|\n";
  for (const int level : {3, 2, 1}) {
    if (!by_level.count(level)) continue;
    const LevelCount& c = by_level.at(level);
    md << "| " << names[level] << " | " << c.pairs << " | " << c.errors << " | "
       << absl::StrFormat("%.2f%%",
                          100.0 * static_cast<double>(c.errors) / static_cast<double>(std::max<int64_t>(c.pairs, 1)))
       << " | " << c.false_rejects << " | " << c.false_accepts << " |\n";
  }
  md << "| all | " << all.pairs << " | " << all.errors << " | "
     << absl::StrFormat("%.2f%%",
                        100.0 * static_cast<double>(all.errors) / static_cast<double>(std::max<int64_t>(all.pairs, 1)))
     << " | " << all.false_rejects << " | " << all.false_accepts << " |\n";
  if (by_level.count(0))
    md << "\nPairs with an image where no face was found (left out): " << by_level.at(0).pairs << ".\n";
  md << "\nPairs where either face has the reason (at MEDIUM or LOW):\n\n| reason | pairs | errors | error rate "
        "|\n|---|---:|---:|---:|\n";
  for (const auto& [reason, c] : by_reason) {
    md << "| " << reason << " | " << c.pairs << " | " << c.errors << " | "
       << absl::StrFormat("%.2f%%", 100.0 * static_cast<double>(c.errors) / static_cast<double>(c.pairs)) << " |\n";
  }

  plot::Chart chart;
  chart.title = "Verification error rate by face quality";
  chart.subtitle = absl::StrFormat("%s, %s, threshold %.4f (%s)", fs::path(o.pairs).filename().string(),
                                   model.model_id(), *threshold, model.spec().default_operating_point);
  chart.x.label = "pair quality level (1 LOW, 2 MEDIUM, 3 HIGH)";
  chart.x.min = 0.5;
  chart.x.max = 3.5;
  chart.y.label = "error rate";
  chart.y.percent = true;
  chart.y.min = 0;
  plot::LineSeries series;
  series.label = "error rate";
  series.markers = true;
  for (const int level : {1, 2, 3}) {
    if (!by_level.count(level) || by_level.at(level).pairs == 0) continue;
    const LevelCount& c = by_level.at(level);
    series.x.push_back(level);
    series.y.push_back(static_cast<double>(c.errors) / static_cast<double>(c.pairs));
    chart.notes.push_back(absl::StrFormat("%s: %d errors in %d pairs", names[level], c.errors, c.pairs));
  }
  chart.lines.push_back(series);
  const absl::Status png = plot::WritePng(chart, o.out + ".png");
  if (!png.ok()) std::cerr << png.message() << "\n";
  std::cout << result.dump(2) << "\n";
  return 0;
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"quality_bench: face quality against verification errors on LFW"};
  app.require_subcommand(1);
  CLI::App* table = app.add_subcommand("sweep-table", "rewrite <out>.md from a sweep's <out>.json");
  table->add_option("--out", o.out, "output prefix of the sweep")->required();
  for (CLI::App* sub : {app.add_subcommand("sweep", "degrade View 1 images step by step and propose the bounds"),
                        app.add_subcommand("levels", "error rate by quality level on a pairs file"),
                        app.add_subcommand("pose", "the spread of estimated head pose over a pairs file's images")}) {
    sub->add_option("--lfw", o.lfw, "LFW folder")->capture_default_str();
    sub->add_option("--model", o.model_dir, "model bundle")->capture_default_str();
    sub->add_option("--pairs", o.pairs, "pairs file")->required();
    sub->add_option("--out", o.out, "output prefix (<out>.json, .md, .png)")->required();
    sub->add_option("--max-pairs", o.max_pairs, "pairs used, evenly spaced, half of each kind; 0: all");
    sub->add_option("--threads", o.threads, "LibTorch threads")->capture_default_str();
    sub->add_option("--embeddings-out", o.embeddings_out, "levels: also keep the embeddings in this file");
    sub->add_flag("--reuse", o.reuse, "levels: take the embeddings and measurements from --embeddings-out");
  }
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("sweep-table")) return SweepTable(o);
  for (int i = 0; i < argc; ++i)
    o.command += (i ? " " : "") + (i == 0 ? fs::path(argv[0]).filename().string() : std::string(argv[i]));
  SetTorchThreads(o.threads);
  torch::NoGradGuard no_grad;
  const auto model = FaceModel::Load(o.model_dir, torch::kCPU);
  if (!model.ok()) {
    std::cerr << model.status().message() << "\n";
    return 1;
  }
  if (!fs::path(o.out).parent_path().empty()) fs::create_directories(fs::path(o.out).parent_path());
  if (app.got_subcommand("pose")) return PoseSpread(o, **model);
  return app.got_subcommand("sweep") ? Sweep(o, **model) : Levels(o, **model);
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) { return veriface::Main(argc, argv); }
