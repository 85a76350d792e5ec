// The whole pipeline in one process, no gRPC: the yardstick the server is measured against, and the C++
// side of the comparison with the Python reference.
//
//   pipeline_throughput --images LIST --mode verify --count 200 --batch 16 --threads 2
//       Verify work as the server does it (decode both images, detect, largest face, align, embed with the
//       bundle's test-time views, cosine), with up to --batch verifies' chips embedded together: the best
//       throughput the server's batching could reach on these images.
//   pipeline_throughput --images LIST --mode images --threads 2 [--views bundle|one]
//       One image at a time, as the Python reference's timing does: decode, detect, the central face,
//       align, embed. `--views one` embeds the single chip (the reference's work); `bundle` adds the
//       bundle's test-time views (what the service serves).
//
// LIST is a text file of image paths, one per line; verify k uses images k and k+1 (mod the list), the
// same pairs `veriface load --mix verify=1` sends. Prints one JSON object.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/common/image_list.h"
#include "core/common/device.h"
#include "core/common/openmp_env.h"
#include "core/detect/face.h"
#include "core/image/decode.h"
#include "core/model/face_model.h"

namespace veriface {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Options {
  std::string model_dir = "models/default";
  std::string list_path;
  std::string mode = "verify";
  std::string views = "bundle";
  int count = 200;
  int batch = 16;
  int threads = 2;
  int warmup = 4;
};

// Milliseconds spent in each step, summed over the run.
struct StageTimes {
  double decode = 0, detect = 0, align = 0, embed = 0;
  json Json(double per) const {
    return {
        {"decode_ms", decode / per}, {"detect_ms", detect / per}, {"align_ms", align / per}, {"embed_ms", embed / per}};
  }
};

// Decode, detect and align one image's selected face; an empty chip when no face is found.
// `served`: the bundle's test-time crops (FaceModel::Cut, what the server embeds); else the one aligned
// chip (the reference's work). No views when the image cannot be used.
FaceViews ChipOf(const FaceModel& model, const std::string& bytes, FaceSelection selection, bool served,
                 StageTimes& t) {
  auto start = Clock::now();
  const absl::StatusOr<cv::Mat> rgb = DecodeImage(bytes);
  t.decode += MsSince(start);
  if (!rgb.ok()) return {};
  start = Clock::now();
  const auto faces = model.Detect(*rgb, {});
  t.detect += MsSince(start);
  if (!faces.ok()) return {};
  const int i = SelectFace(*faces, selection, rgb->cols, rgb->rows);
  if (i < 0) return {};
  start = Clock::now();
  FaceViews chip =
      served ? model.Cut(*rgb, (*faces)[static_cast<size_t>(i)]) : model.Align(*rgb, (*faces)[static_cast<size_t>(i)]);
  t.align += MsSince(start);
  return chip;
}

json RunVerify(const FaceModel& model, const std::vector<std::string>& images, const Options& o) {
  StageTimes t;
  double similarity_sum = 0;
  const auto run = [&](int count, bool measure) {
    StageTimes local;
    for (int first = 0; first < count; first += o.batch) {
      const int n = std::min(o.batch, count - first);
      std::vector<FaceViews> chips;
      for (int k = first; k < first + n; ++k) {
        for (const int j : {k, k + 1}) {
          FaceViews chip = ChipOf(model, images[static_cast<size_t>(j) % images.size()], FaceSelection::kLargest,
                                  /*served=*/true, local);
          if (chip.crops.empty()) {
            // Verify would refuse the call; a throughput benchmark wants images with faces.
            std::cerr << "pipeline_throughput: no face in image " << j % images.size() << " of the list\n";
            std::exit(1);
          }
          chips.push_back(std::move(chip));
        }
      }
      const auto start = Clock::now();
      const torch::Tensor e = *model.Embed(chips);
      const torch::Tensor cosine = (e.slice(0, 0, e.size(0), 2) * e.slice(0, 1, e.size(0), 2)).sum(1);
      if (measure) similarity_sum += cosine.sum().item<double>();
      local.embed += MsSince(start);
    }
    if (measure) t = local;
  };
  run(o.warmup, false);
  const auto start = Clock::now();
  run(o.count, true);
  const double seconds = MsSince(start) / 1e3;
  return {{"mode", "verify"},
          {"verifies", o.count},
          {"batch", o.batch},
          {"seconds", seconds},
          {"verifies_per_s", o.count / seconds},
          {"images_per_s", 2 * o.count / seconds},
          {"per_verify", t.Json(o.count)},
          {"mean_similarity", similarity_sum / o.count}};
}

json RunImages(const FaceModel& model, const std::vector<std::string>& images, const Options& o) {
  StageTimes t;
  int64_t faceless = 0;
  std::vector<double> latency;
  const auto one = [&](const std::string& bytes, StageTimes& times) {
    const FaceViews chip = ChipOf(model, bytes, FaceSelection::kCentral, o.views == "bundle", times);
    if (chip.crops.empty()) return false;
    const auto start = Clock::now();
    if (o.views == "one") {
      (void)model.embedder().Features(chip.crops);
    } else {
      (void)model.Embed({chip});
    }
    times.embed += MsSince(start);
    return true;
  };
  StageTimes ignored;
  for (int i = 0; i < o.warmup; ++i) one(images[static_cast<size_t>(i) % images.size()], ignored);
  const int n = static_cast<int>(images.size());
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    faceless += one(images[static_cast<size_t>(i)], t) ? 0 : 1;
    latency.push_back(MsSince(t0));
  }
  const double seconds = MsSince(start) / 1e3;
  std::sort(latency.begin(), latency.end());
  return {{"mode", "images"},
          {"views", o.views},
          {"images", n},
          {"seconds", seconds},
          {"images_per_s", n / seconds},
          {"median_ms", latency[latency.size() / 2]},
          {"per_image", t.Json(n)},
          {"images_without_face", faceless}};
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"pipeline_throughput: the face pipeline in one process, for comparison with the server"};
  app.add_option("--images", o.list_path, "text file of image paths, one per line")->required();
  app.add_option("--model", o.model_dir, "model bundle")->capture_default_str();
  app.add_option("--mode", o.mode, "verify or images")->check(CLI::IsMember({"verify", "images"}));
  app.add_option("--views", o.views, "images mode: bundle or one")->check(CLI::IsMember({"bundle", "one"}));
  app.add_option("--count", o.count, "verify mode: verifies to time")->capture_default_str();
  app.add_option("--batch", o.batch, "verify mode: verifies embedded together")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "LibTorch intra-op threads (0: one per core)")->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed items first")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  SetTorchThreads(o.threads);
  torch::NoGradGuard no_grad;
  const auto model = FaceModel::Load(o.model_dir, torch::kCPU);
  if (!model.ok()) {
    std::cerr << "pipeline_throughput: " << model.status().message() << "\n";
    return 1;
  }
  const auto images = bench::ReadImageList(o.list_path);
  if (!images.ok()) {
    std::cerr << "pipeline_throughput: " << images.status().message() << "\n";
    return 1;
  }
  json out = o.mode == "verify" ? RunVerify(**model, *images, o) : RunImages(**model, *images, o);
  out["threads"] = o.threads;
  out["model_id"] = (*model)->model_id();
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) {
  veriface::UseShortOpenMpSpins(argv);
  return veriface::Main(argc, argv);
}
