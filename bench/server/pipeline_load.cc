// The server's own model pipeline (server/pipeline.h: both dynamic batchers, the same configuration),
// driven in-process by C caller threads doing Verify's work, with no gRPC in between. Compared with
// `veriface load` against the real server on the same images, it shows what the RPC layer costs.
//
//   pipeline_load --images LIST --concurrency 16 --seconds 20 [--config config/veriface.yaml]
//                 [--model models/default] [--set inference.embed.max_batch=1 ...]
//
// Verify k decodes images k and k+1 of LIST (mod its length), detects both in one submission, takes the
// largest face of each, embeds the two together and takes their cosine: what the Verify RPC does for
// two image sides. Prints one JSON object with throughput and latency percentiles.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/image_list.h"
#include "core/common/openmp_env.h"
#include "core/detect/face.h"
#include "core/image/decode.h"
#include "server/config.h"
#include "server/pipeline.h"

namespace veriface::server {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

absl::Status OneVerify(Pipeline& pipeline, const std::string& a, const std::string& b) {
  std::vector<DetectRequest> requests(2);
  for (int i = 0; i < 2; ++i) {
    auto rgb = DecodeImage(i == 0 ? a : b);
    if (!rgb.ok()) return rgb.status();
    requests[static_cast<size_t>(i)].rgb = *std::move(rgb);
  }
  auto detections = pipeline.Detect(requests, CallBudget{});
  if (!detections.ok()) return detections.status();
  std::vector<const cv::Mat*> images;
  std::vector<FaceDetection> faces;
  for (size_t i = 0; i < 2; ++i) {
    const int k = SelectFace((*detections)[i], FaceSelection::kLargest, requests[i].rgb.cols, requests[i].rgb.rows);
    if (k < 0) return absl::FailedPreconditionError("no face");
    images.push_back(&requests[i].rgb);
    faces.push_back((*detections)[i][static_cast<size_t>(k)]);
  }
  auto embeddings = pipeline.Embed(images, faces, CallBudget{});
  return embeddings.status();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<size_t>(std::min<double>(v.size() - 1, std::floor(p / 100.0 * v.size())));
  return v[i];
}

int Main(int argc, char** argv) {
  std::string list_path, config_path = "config/veriface.yaml", model_dir = "models/default";
  std::vector<std::string> sets;
  int concurrency = 16;
  double seconds = 20;
  CLI::App app{"pipeline_load: the server's pipeline without gRPC, under Verify load"};
  app.add_option("--images", list_path, "text file of image paths, one per line")->required();
  app.add_option("--config", config_path, "server configuration")->capture_default_str();
  app.add_option("--model", model_dir, "model bundle")->capture_default_str();
  app.add_option("--set", sets, "configuration overrides KEY=VALUE");
  app.add_option("-c,--concurrency", concurrency, "caller threads")->capture_default_str();
  app.add_option("-d,--seconds", seconds, "measured seconds")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<std::pair<std::string, std::string>> overrides{{"model.dir", model_dir}};
  for (const std::string& s : sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos) {
      std::cerr << "pipeline_load: --set wants KEY=VALUE, got " << s << "\n";
      return 2;
    }
    overrides.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  auto config = LoadConfig(config_path, overrides);
  if (!config.ok()) {
    std::cerr << "pipeline_load: " << config.status().message() << "\n";
    return 1;
  }
  const auto read = bench::ReadImageList(list_path);
  if (!read.ok()) {
    std::cerr << "pipeline_load: " << read.status().message() << "\n";
    return 1;
  }
  const std::vector<std::string>& images = *read;
  auto pipeline = Pipeline::Load(*config, nullptr);
  if (!pipeline.ok()) {
    std::cerr << "pipeline_load: " << pipeline.status().message() << "\n";
    return 1;
  }

  // Warm up (one-time allocations, oneDNN primitive caches), then run for `seconds`.
  for (size_t k = 0; k < 4; ++k)
    (void)OneVerify(**pipeline, images[k % images.size()], images[(k + 1) % images.size()]);
  std::atomic<int64_t> next{0}, failures{0};
  const auto start = Clock::now();
  const auto stop_at = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::vector<double>> latency(static_cast<size_t>(concurrency));
  std::vector<std::thread> callers;
  for (int t = 0; t < concurrency; ++t) {
    callers.emplace_back([&, t] {
      while (Clock::now() < stop_at) {
        const auto k = static_cast<size_t>(next.fetch_add(1));
        const auto t0 = Clock::now();
        const absl::Status s = OneVerify(**pipeline, images[k % images.size()], images[(k + 1) % images.size()]);
        if (!s.ok()) failures.fetch_add(1);
        latency[static_cast<size_t>(t)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  }
  for (auto& c : callers) c.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& l : latency) all.insert(all.end(), l.begin(), l.end());
  (*pipeline)->Shutdown();
  const auto calls = static_cast<int64_t>(all.size());
  const json out{
      {"mode", "server pipeline in-process, Verify work"},
      {"concurrency", concurrency},
      {"overrides", sets},
      {"calls", calls},
      {"failures", failures.load()},
      {"elapsed_s", elapsed},
      {"throughput_per_s", static_cast<double>(calls - failures.load()) / elapsed},
      {"latency", {{"p50_ms", Percentile(all, 50)}, {"p90_ms", Percentile(all, 90)}, {"p99_ms", Percentile(all, 99)}}}};
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace veriface::server

int main(int argc, char** argv) {
  veriface::UseShortOpenMpSpins(argv);
  return veriface::server::Main(argc, argv);
}
