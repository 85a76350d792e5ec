// What moving a gallery to another model costs in accuracy and time (bench/migration/README.md).
//
//   crop_reembed_bench --pairs ../shared/data/lfw/pairs.txt --target models/default --target /tmp/mfn
//                      --out bench/results/migration/crop_reembed
//
// Each image is seen as the server sees an enrolment: the source bundle's detector finds the central face
// and the face crop is cut as gallery.keep_face_crops stores it. For every target bundle the face is then
// embedded twice: from the photo (a fresh enrolment with that model) and from the opened crop (what
// veriface-migrate stores). Reported per target: the cosine agreement of the two, the LFW 10-fold accuracy
// and TAR at FAR 1e-3 with every pair's first image re-embedded from its crop against both from the photo,
// the crops' sizes, and the re-embedding rate.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/align/face_crop.h"
#include "core/common/device.h"
#include "core/common/file_util.h"
#include "core/eval/metrics.h"
#include "core/eval/pairs.h"
#include "core/image/decode.h"
#include "core/model/crop_embedding.h"
#include "core/model/face_model.h"

namespace veriface {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Seen {
  cv::Mat rgb;
  FaceDetection face;
  FaceCrop crop;
};

// Every `step`-th same and different pair, keeping the folds' balance: the whole file when step is 1.
std::vector<ImagePair> EveryNth(const PairsFile& file, int step) {
  std::vector<ImagePair> out;
  for (size_t i = 0; i < file.pairs.size(); i += static_cast<size_t>(step)) out.push_back(file.pairs[i]);
  return out;
}

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

json Protocol(const std::vector<double>& scores, const std::vector<bool>& same, const std::vector<int>& folds) {
  const auto s = VerificationScores::Create(scores, same);
  if (!s.ok()) return {{"error", std::string(s.status().message())}};
  const auto cv = CrossValidate(*s, folds);
  if (!cv.ok()) return {{"error", std::string(cv.status().message())}};
  return {{"accuracy", cv->mean_accuracy}, {"std", cv->std_accuracy}, {"tar_at_far_1e-3", s->AtFar(1e-3).tar}};
}

int Run(const std::string& lfw, const std::string& source_dir, const std::vector<std::string>& targets,
        const std::string& pairs_path, int step, const std::string& out, const std::string& command) {
  const torch::Device cpu(torch::kCPU);
  const auto source = FaceModel::Load(source_dir, cpu);
  if (!source.ok()) return std::cerr << source.status() << "\n", 1;
  const auto file = ReadPairsFile(pairs_path);
  if (!file.ok()) return std::cerr << file.status() << "\n", 1;
  const std::vector<ImagePair> pairs = EveryNth(*file, step);
  std::map<LfwImageId, Seen> seen;
  for (const ImagePair& p : pairs) {
    seen[p.a];
    seen[p.b];
  }
  LfwImageResolver resolver(lfw);
  std::vector<double> crop_bytes;
  size_t done = 0;
  for (auto& [id, s] : seen) {
    const auto path = resolver.Resolve(id);
    const auto bytes = path.ok() ? ReadFileToString(*path) : absl::StatusOr<std::string>(path.status());
    auto rgb = bytes.ok() ? DecodeImage(*bytes) : absl::StatusOr<cv::Mat>(bytes.status());
    if (!rgb.ok()) return std::cerr << id.Key() << ": " << rgb.status() << "\n", 1;
    const auto faces = (*source)->Detect(*rgb, (*source)->spec().detector_defaults);
    if (!faces.ok()) return std::cerr << faces.status() << "\n", 1;
    const int pick = SelectFace(*faces, FaceSelection::kCentral, rgb->cols, rgb->rows);
    if (pick < 0) continue;  // no face: the pair scores -1 below, for every variant alike
    s.rgb = *std::move(rgb);
    s.face = (*faces)[static_cast<size_t>(pick)];
    s.crop = CutFaceCrop(s.rgb, s.face);
    crop_bytes.push_back(static_cast<double>(s.crop.jpeg.size()));
    if (++done % 500 == 0) std::cerr << "detected " << done << " of " << seen.size() << "\n";
  }
  json report = {{"command", command},
                 {"pairs_file", pairs_path},
                 {"pairs", pairs.size()},
                 {"images", seen.size()},
                 {"faces", crop_bytes.size()},
                 {"crop_bytes_mean", crop_bytes.empty() ? 0.0 : [&] {
                    double sum = 0;
                    for (double b : crop_bytes) sum += b;
                    return sum / static_cast<double>(crop_bytes.size());
                  }()},
                 {"crop_bytes_max", crop_bytes.empty() ? 0.0 : *std::max_element(crop_bytes.begin(), crop_bytes.end())},
                 {"crop_options", {{"margin", FaceCropOptions().margin},
                                   {"max_side", FaceCropOptions().max_side},
                                   {"jpeg_quality", FaceCropOptions().jpeg_quality}}},
                 {"targets", json::array()}};
  for (const std::string& target_dir : targets) {
    const auto target = FaceModel::Load(target_dir, cpu);
    if (!target.ok()) return std::cerr << target.status() << "\n", 1;
    std::map<LfwImageId, std::pair<std::vector<float>, std::vector<float>>> embedded;  // photo, crop
    std::vector<double> agreement;
    double photo_s = 0, crop_s = 0;
    for (const auto& [id, s] : seen) {
      if (s.rgb.empty()) continue;
      const Clock::time_point t0 = Clock::now();
      const auto photo = (*target)->EmbedRows({(*target)->Cut(s.rgb, s.face)});
      const Clock::time_point t1 = Clock::now();
      const auto crop = EmbedFaceCrops(**target, {s.crop});
      const Clock::time_point t2 = Clock::now();
      if (!photo.ok() || !crop.ok()) return std::cerr << id.Key() << ": embedding failed\n", 1;
      photo_s += std::chrono::duration<double>(t1 - t0).count();
      crop_s += std::chrono::duration<double>(t2 - t1).count();
      std::vector<float> from_photo = std::move(photo->front());
      agreement.push_back(Cosine(from_photo, crop->front()));
      embedded[id] = {std::move(from_photo), crop->front()};
    }
    std::vector<double> fresh, migrated;
    std::vector<bool> same;
    std::vector<int> folds;
    for (const ImagePair& p : pairs) {
      const auto a = embedded.find(p.a), b = embedded.find(p.b);
      const bool both = a != embedded.end() && b != embedded.end();
      fresh.push_back(both ? Cosine(a->second.first, b->second.first) : -1.0);
      migrated.push_back(both ? Cosine(a->second.second, b->second.first) : -1.0);
      same.push_back(p.same);
      folds.push_back(p.fold);
    }
    const double n = static_cast<double>(agreement.size());
    report["targets"].push_back({{"bundle", target_dir},
                                 {"model_id", (*target)->model_id()},
                                 {"agreement_min", Quantile(agreement, 0.0)},
                                 {"agreement_p01", Quantile(agreement, 0.01)},
                                 {"agreement_median", Quantile(agreement, 0.5)},
                                 {"fresh", Protocol(fresh, same, folds)},
                                 {"migrated", Protocol(migrated, same, folds)},
                                 {"ms_per_face_from_photo", 1000 * photo_s / n},
                                 {"ms_per_face_from_crop", 1000 * crop_s / n}});
    std::cerr << report["targets"].back().dump(1) << "\n";
  }
  std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  std::ofstream(out + ".json") << report.dump(1) << "\n";
  std::cout << report.dump(1) << "\n";
  return 0;
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) {
  CLI::App app{"crop_reembed_bench: re-embedding from stored face crops against embedding the photo"};
  std::string lfw = "../shared/data/lfw", source = "models/default", pairs = "../shared/data/lfw/pairs.txt";
  std::string out = "bench/results/migration/crop_reembed";
  std::vector<std::string> targets;
  int step = 1;
  app.add_option("--lfw", lfw, "LFW folder");
  app.add_option("--source", source, "The bundle whose detector finds the faces (the serving model)");
  app.add_option("--target", targets, "A bundle to re-embed with (repeatable)")->required();
  app.add_option("--pairs", pairs, "LFW pairs file");
  app.add_option("--every", step, "Every Nth pair (1: all)")->check(CLI::PositiveNumber);
  app.add_option("--out", out, "Path prefix of the result (.json)");
  CLI11_PARSE(app, argc, argv);
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  torch::set_num_threads(2);
  return veriface::Run(lfw, source, targets, pairs, step, out, command);
}
