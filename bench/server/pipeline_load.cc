// The server's serving core (core/serving: FaceService over the batched engine, with the server's own
// configuration) driven in-process by C caller threads calling Verify, with no gRPC in between. Compared
// with `veriface load` against the real server on the same images, it shows what the RPC layer costs.
//
//   pipeline_load --images LIST --concurrency 16 --seconds 20 [--config config/veriface.yaml]
//                 [--model models/default] [--set inference.embed.max_batch=1 ...]
//
// Verify k compares images k and k+1 of LIST (mod its length), each by its largest face: the same call the
// Verify RPC makes for two image sides. Prints one JSON object with throughput and latency percentiles.

#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "bench/common/image_list.h"
#include "core/common/openmp_env.h"
#include "core/common/status_macros.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "core/serving/batched_engine.h"
#include "core/serving/face_service.h"
#include "server/config.h"
#include "server/core_options.h"

namespace veriface::server {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

absl::Status OneVerify(FaceService& service, const std::string& a, const std::string& b) {
  VerifyQuery query;
  for (FaceInput* side : {&query.a, &query.b}) {
    side->kind = FaceInput::Kind::kImage;
    side->image.choice = FaceChoice::kLargest;
  }
  query.a.image.bytes = a;
  query.b.image.bytes = b;
  return service.Verify(query, CallBudget{}).status();
}

// The service as the server builds it, over a scratch gallery at `gallery_path` (Verify of two images never
// reads it).
absl::StatusOr<std::unique_ptr<FaceService>> OpenService(const ServerConfig& config, const std::string& gallery_path) {
  VF_ASSIGN_OR_RETURN(auto engine, BatchedEngine::Load(ModelOptionsOf(config), EngineOptionsOf(config), nullptr));
  VF_ASSIGN_OR_RETURN(auto store, SqliteGalleryStore::Open(gallery_path));
  VF_ASSIGN_OR_RETURN(auto gallery, Gallery::Open(std::move(store), engine->spec().model_id,
                                                  engine->spec().embedding_dim, GalleryLimitsOf(config),
                                                  config.gallery_index));
  return FaceService::Create(ServiceOptionsOf(config), std::move(engine), std::move(gallery), nullptr);
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
  CLI::App app{"pipeline_load: the server's serving core without gRPC, under Verify load"};
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
  // The scratch gallery's folder, removed (with SQLite's -wal and -shm files) however the run ends.
  std::string scratch = (std::filesystem::temp_directory_path() / "pipeline_load-XXXXXX").string();
  if (::mkdtemp(scratch.data()) == nullptr) {
    std::cerr << "pipeline_load: cannot make a scratch folder under " << std::filesystem::temp_directory_path() << "\n";
    return 1;
  }
  const absl::Cleanup remove_scratch = [&scratch] {
    std::error_code ec;
    std::filesystem::remove_all(scratch, ec);
  };
  auto service = OpenService(*config, scratch + "/gallery.db");
  if (!service.ok()) {
    std::cerr << "pipeline_load: " << service.status().message() << "\n";
    return 1;
  }

  // Warm up (one-time allocations, oneDNN primitive caches), then run for `seconds`.
  for (size_t k = 0; k < 4; ++k) (void)OneVerify(**service, images[k % images.size()], images[(k + 1) % images.size()]);
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
        const absl::Status s = OneVerify(**service, images[k % images.size()], images[(k + 1) % images.size()]);
        if (!s.ok()) failures.fetch_add(1);
        latency[static_cast<size_t>(t)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  }
  for (auto& c : callers) c.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& l : latency) all.insert(all.end(), l.begin(), l.end());
  (*service)->Shutdown();
  const auto calls = static_cast<int64_t>(all.size());
  const json out{
      {"mode", "serving core in-process (FaceService::Verify)"},
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
