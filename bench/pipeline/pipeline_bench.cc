// Inference-core speed: the descriptor per batch size, MTCNN per image size and stage, and the one
// large 3x3 convolution whose GFLOP/s serves as this machine's measured peak (same run, same threads);
// and a whole face embedding (every chip of the bundle's test-time setting, every network of a fusion)
// for each bundle in VERIFACE_BENCH_BUNDLES (colon-separated folders; default: the default model).
//
//   build/bench/pipeline/pipeline_bench [--threads N] [google-benchmark flags]
//
// Counters: ms_per_face / ms_per_image (wall time per item), gflops (achieved), stage_*_ms, chips_per_face.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <opencv2/imgproc.hpp>
#include <string>

#include "bench/common/mtcnn_stages.h"
#include "core/common/device.h"
#include "core/common/openmp_env.h"
#include "core/image/decode.h"
#include "core/model/face_model.h"
#include "core/nn/conv2d.h"

namespace veriface {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string SourceDir() { return EnvOr("VERIFACE_SOURCE_DIR", VERIFACE_SOURCE_DIR_DEFAULT); }
std::string SharedDir() { return EnvOr("VERIFACE_SHARED_DIR", SourceDir() + "/../shared"); }

const FaceModel& Model() {
  static const std::shared_ptr<const FaceModel> model = [] {
    auto m = FaceModel::Load(EnvOr("VERIFACE_MODEL_DIR", SourceDir() + "/models/default"), torch::kCPU);
    if (!m.ok()) {
      std::fprintf(stderr, "cannot load model: %s\n", std::string(m.status().message()).c_str());
      std::exit(1);
    }
    return *m;
  }();
  return *model;
}

cv::Mat Image(const std::string& relative) {
  auto image = LoadImageFile(SharedDir() + "/" + relative);
  if (!image.ok()) {
    std::fprintf(stderr, "%s\n", std::string(image.status().message()).c_str());
    std::exit(1);
  }
  return *image;
}

// Floating-point operations of the descriptor for one 150x150 chip (multiply-adds count 2).
double DescriptorFlops() {
  static const double flops = [] {
    double total = 0;
    // Every convolution of the ResNet, found by running one chip through hooks would need a framework
    // feature LibTorch lacks; the shapes are fixed, so count them from the layer table (models.md 2.2).
    const auto conv = [&total](int out_hw, int cin, int cout, int k) {
      total += 2.0 * out_hw * out_hw * cout * cin * k * k;
    };
    conv(72, 3, 32, 7);
    for (int i = 0; i < 6; ++i) conv(35, 32, 32, 3);
    conv(17, 32, 64, 3), conv(17, 64, 64, 3);
    for (int i = 0; i < 6; ++i) conv(17, 64, 64, 3);
    conv(8, 64, 128, 3), conv(8, 128, 128, 3);
    for (int i = 0; i < 4; ++i) conv(8, 128, 128, 3);
    conv(3, 128, 256, 3), conv(4, 256, 256, 3);
    for (int i = 0; i < 4; ++i) conv(4, 256, 256, 3);
    conv(1, 256, 256, 3), conv(2, 256, 256, 3);
    total += 2.0 * 256 * 128;
    return total;
  }();
  return flops;
}

void BM_Descriptor(benchmark::State& state) {
  const auto batch = static_cast<int>(state.range(0));
  const cv::Mat rgb = Image("data/lfw/Abel_Pacheco/Abel_Pacheco_0001.jpg");
  const auto detected = Model().Detect(rgb, {});
  const cv::Mat chip = Model().Align(rgb, detected->front());
  const std::vector<cv::Mat> chips(static_cast<size_t>(batch), chip);
  const auto start = Clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(Model().embedder().Features(chips));
  const double seconds = Seconds(start);
  const double faces = static_cast<double>(state.iterations()) * batch;
  state.counters["ms_per_face"] = 1e3 * seconds / faces;
  state.counters["gflops"] = DescriptorFlops() * faces * 1e-9 / seconds;
}
BENCHMARK(BM_Descriptor)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Arg(8)
    ->Arg(16)
    ->Arg(32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The reference for "peak": one large 3x3 convolution through oneDNN, 64 -> 64 channels on 56x56, batch 16.
void BM_PeakConv3x3(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  Conv2dSpec spec;
  spec.in_channels = spec.out_channels = 64;
  spec.kernel_h = spec.kernel_w = 3;
  spec.padding = 1;
  FastConv2d conv(spec);
  const auto x = torch::randn({16, 64, 56, 56});
  const auto start = Clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(conv(x));
  const double flops = 2.0 * 16 * 56 * 56 * 64 * 64 * 9;
  state.counters["gflops"] = flops * static_cast<double>(state.iterations()) * 1e-9 / Seconds(start);
}
BENCHMARK(BM_PeakConv3x3)->Unit(benchmark::kMillisecond)->UseRealTime();

// The batch-1 cliff and its fixes: a 3x3 convolution of the ResNet's 17x17 stage through LibTorch's
// dispatcher (which picks the im2col `_slow_conv2d` path for such small inputs), through oneDNN, and
// through oneDNN with the weights already in its blocked layout (FastConv2d::PrepackForInference).
void BM_Batch1Conv3x3(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  const auto path = state.range(0);
  const auto x = torch::randn({1, 64, 17, 17});
  const auto w = torch::randn({64, 64, 3, 3});
  const auto b = torch::randn({64});
  const auto packed = at::mkldnn_reorder_conv2d_weight(w.to_mkldnn(), {1, 1}, {1, 1}, {1, 1}, 1);
  for (auto _ : state) {
    if (path == 0) {
      benchmark::DoNotOptimize(at::conv2d(x, w, b, {1, 1}, {1, 1}));
    } else {
      benchmark::DoNotOptimize(at::mkldnn_convolution(x, path == 2 ? packed : w, b, {1, 1}, {1, 1}, {1, 1}, 1));
    }
  }
  state.SetLabel(path == 0 ? "LibTorch dispatcher" : path == 1 ? "oneDNN" : "oneDNN, prepacked weights");
}
BENCHMARK(BM_Batch1Conv3x3)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

// MTCNN on one image resized to W x H: total and per stage.
void BM_Mtcnn(benchmark::State& state) {
  const int w = static_cast<int>(state.range(0)), h = static_cast<int>(state.range(1));
  cv::Mat rgb =
      w == 250 ? Image("data/lfw/Abel_Pacheco/Abel_Pacheco_0001.jpg") : Image("data/group-photos/sample1.jpg");
  if (rgb.cols != w || rgb.rows != h) cv::resize(rgb, rgb, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  const MtcnnDetector& detector = Model().detector();
  const DetectorOptions options;
  double s1 = 0, s2 = 0, s3 = 0;
  size_t faces = 0;
  for (auto _ : state) {
    const MtcnnStageTimes t = DetectStageByStage(detector, rgb, options);
    s1 += t.pnet_ms;
    s2 += t.rnet_ms;
    s3 += t.onet_ms;
    faces = t.faces;
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["stage1_pnet_ms"] = s1 / n;
  state.counters["stage2_rnet_ms"] = s2 / n;
  state.counters["stage3_onet_ms"] = s3 / n;
  state.counters["faces"] = static_cast<double>(faces);
}
BENCHMARK(BM_Mtcnn)
    ->Args({250, 250})
    ->Args({640, 480})
    ->Args({1280, 720})
    ->Args({1920, 1080})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One LFW face embedded by `bundle` exactly as the server embeds it (FaceModel::Cut, then Embed), 8 faces
// per call as the embed batcher would group them.
void BM_FaceEmbedding(benchmark::State& state, const std::string& bundle) {
  auto loaded = FaceModel::Load(bundle, torch::kCPU);
  if (!loaded.ok()) {
    state.SkipWithError(std::string(loaded.status().message()).c_str());
    return;
  }
  const FaceModel& model = **loaded;
  const cv::Mat rgb = Image("data/lfw/Abel_Pacheco/Abel_Pacheco_0001.jpg");
  const auto detected = model.Detect(rgb, {});
  if (!detected.ok() || detected->empty()) {
    state.SkipWithError("no face");
    return;
  }
  const std::vector<FaceViews> faces(8, model.Cut(rgb, detected->front()));
  const auto start = Clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(model.Embed(faces));
  const double seconds = Seconds(start);
  state.counters["ms_per_face"] = 1e3 * seconds / (static_cast<double>(state.iterations()) * 8);
  state.counters["chips_per_face"] =
      static_cast<double>(faces[0].crops.size()) * (model.spec().flip_average ? 2.0 : 1.0);
  state.SetLabel(model.model_id());
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) {
  veriface::UseShortOpenMpSpins(argv);
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::atoi(argv[i] + 10);
  }
  veriface::SetTorchThreads(threads);
  const std::string bundles = veriface::EnvOr("VERIFACE_BENCH_BUNDLES", veriface::SourceDir() + "/models/default");
  for (size_t start = 0; start <= bundles.size();) {
    const size_t end = std::min(bundles.find(':', start), bundles.size());
    const std::string bundle = bundles.substr(start, end - start);
    if (!bundle.empty()) {
      benchmark::RegisterBenchmark(("BM_FaceEmbedding/" + bundle).c_str(), veriface::BM_FaceEmbedding, bundle)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
    start = end + 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
