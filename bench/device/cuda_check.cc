// The pipeline on one device, checked and timed: CUDA on a GPU machine, or the CPU for comparison.
//
//   cuda_check --model DIR [--tfjs-weights DIR] --goldens DIR --inputs DIR --device cuda --out FILE.json
//
// Checks, with the goldens' own tolerances (their README): P-, R- and O-Net on the stored inputs; the
// descriptor alone on the reference chips; the whole pipeline (detect, align, describe) on the 26
// reference images. Then times what the service runs: the descriptor per chip by batch size, MTCNN per
// image by size and stage, and whole faces (detect + the bundle's test-time crops + embed) one request at
// a time against many requests' faces embedded in one batch, which is what dynamic batching buys; and the
// service's own batched path (core/serving's BatchedEngine) under 1, 16 and 64 concurrent callers.
//
// It needs only the core (no gRPC, no image codecs), so that it builds where a CUDA LibTorch exists but
// this project's other dependencies do not: images come as raw RGB from prepare_inputs.py.
// bench/device/README.md says how it is built and run on an accelerator machine.

#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/common/mtcnn_stages.h"
#include "core/align/aligner.h"
#include "core/common/device.h"
#include "core/common/file_util.h"
#include "core/model/face_model.h"
#include "core/serving/batched_engine.h"
#include "trainer/bundle/tfjs_import.h"

namespace veriface {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct Options {
  std::string model;
  std::string tfjs_weights;
  std::string goldens;
  std::string inputs;
  std::string device = "auto";
  std::string out;
  double seconds = 1.0;  // per timed case
};

// One pass/fail line of the report.
struct Checks {
  Json rows = Json::array();
  bool all_pass = true;
  void Add(const std::string& what, double value, double limit) {
    const bool pass = value <= limit;
    all_pass = all_pass && pass;
    rows.push_back({{"check", what}, {"value", value}, {"limit", limit}, {"pass", pass}});
    std::printf("%-4s %-58s %.3g (limit %.3g)\n", pass ? "ok" : "FAIL", what.c_str(), value, limit);
  }
};

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return Json::parse(in);
}

torch::Tensor ReadTensor(const std::string& dir, const Json& entry) {
  const auto bytes = ReadFileToString(dir + "/" + entry.at("file").get<std::string>());
  if (!bytes.ok()) throw std::runtime_error(std::string(bytes.status().message()));
  const std::string dtype = entry.at("dtype").get<std::string>();
  const auto type = dtype == "float32" ? torch::kFloat32 : dtype == "uint8" ? torch::kUInt8 : torch::kFloat64;
  auto t = torch::empty(entry.at("shape").get<std::vector<int64_t>>(), type);
  if (static_cast<size_t>(t.nbytes()) != bytes->size()) throw std::runtime_error("size mismatch: " + entry.dump());
  std::memcpy(t.data_ptr(), bytes->data(), bytes->size());
  return t;
}

// The raw RGB images of prepare_inputs.py, by name.
std::map<std::string, cv::Mat> ReadInputs(const std::string& dir) {
  std::map<std::string, cv::Mat> out;
  for (const Json& e : ReadJson(dir + "/inputs.json")) {
    const auto bytes = ReadFileToString(dir + "/" + e.at("file").get<std::string>());
    if (!bytes.ok()) throw std::runtime_error(std::string(bytes.status().message()));
    cv::Mat rgb(e.at("height").get<int>(), e.at("width").get<int>(), CV_8UC3);
    if (rgb.total() * 3 != bytes->size()) throw std::runtime_error("size mismatch: " + e.dump());
    std::memcpy(rgb.data, bytes->data(), bytes->size());
    out[e.at("name").get<std::string>()] = rgb;
  }
  return out;
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

torch::Tensor Vec(const Json& j) { return torch::tensor(j.get<std::vector<double>>(), torch::kFloat64); }

void CheckNets(const FaceModel& model, const std::string& goldens, Checks* checks) {
  torch::NoGradGuard no_grad;
  const std::string dir = goldens + "/nets";
  const Json nets = ReadJson(dir + "/nets.json");
  MtcnnNets n = model.detector().nets();  // holders share the modules; forward() is not const
  const auto device = model.device();
  {
    const Json& p = nets.at("pnet");
    auto [prob, reg] = n.pnet->forward(ReadTensor(dir, p.at("input")).to(device));
    checks->Add("P-Net prob, stored input", MaxAbsDiff(prob[0], ReadTensor(dir, p.at("prob"))), 1e-4);
    checks->Add("P-Net regression, stored input", MaxAbsDiff(reg[0], ReadTensor(dir, p.at("reg"))), 1e-4);
  }
  {
    const Json& r = nets.at("rnet");
    auto [prob, reg] = n.rnet->forward(ReadTensor(dir, r.at("input")).to(device));
    checks->Add("R-Net prob, stored input", MaxAbsDiff(prob, ReadTensor(dir, r.at("prob"))), 1e-4);
    checks->Add("R-Net regression, stored input", MaxAbsDiff(reg, ReadTensor(dir, r.at("reg"))), 1e-4);
  }
  {
    const Json& o = nets.at("onet");
    auto [prob, reg, landmarks] = n.onet->forward(ReadTensor(dir, o.at("input")).to(device));
    checks->Add("O-Net prob, stored input", MaxAbsDiff(prob, ReadTensor(dir, o.at("prob"))), 1e-4);
    checks->Add("O-Net regression, stored input", MaxAbsDiff(reg, ReadTensor(dir, o.at("reg"))), 1e-4);
    checks->Add("O-Net landmarks, stored input", MaxAbsDiff(landmarks, ReadTensor(dir, o.at("landmarks"))), 1e-4);
  }
}

// Worst case over the 26 reference images of each quantity the goldens' README bounds.
void CheckPipeline(const FaceModel& model, const Json& records, const std::map<std::string, cv::Mat>& inputs,
                   Checks* checks) {
  double face_count_mismatches = 0, central_mismatches = 0, box = 0, landmark = 0, score = 0;
  double chip_abs = 0, chip_euclid = 0, end_to_end = 0;
  for (const Json& rec : records) {
    const std::string name = rec.at("name").get<std::string>();
    const cv::Mat& rgb = inputs.at(name);
    const auto faces = model.Detect(rgb, DetectorOptions{});
    if (!faces.ok()) throw std::runtime_error(name + ": " + std::string(faces.status().message()));
    const Json& expected = rec.at("faces");
    if (faces->size() != expected.size()) {
      ++face_count_mismatches;
      continue;
    }
    for (size_t i = 0; i < faces->size(); ++i) {
      const FaceDetection& f = (*faces)[i];
      const Json& e = expected[i];
      const double b[4] = {f.box.x1, f.box.y1, f.box.x2, f.box.y2};
      for (size_t k = 0; k < 4; ++k) box = std::max(box, std::abs(b[k] - e["box"][k].get<double>()));
      score = std::max(score, std::abs(f.score - e["score"].get<double>()));
      for (size_t k = 0; k < 5; ++k) {
        landmark = std::max(landmark, std::abs(f.landmarks[k].x - e["landmarks"][k][0].get<double>()));
        landmark = std::max(landmark, std::abs(f.landmarks[k].y - e["landmarks"][k][1].get<double>()));
      }
    }
    const cv::Mat& chip = inputs.at(name + ".chip");
    const auto alone = model.embedder().Features({chip}).value()[0].to(torch::kFloat64);
    const auto want = Vec(rec.at("descriptor_from_chip_png"));
    chip_abs = std::max(chip_abs, (alone - want).abs().max().item<double>());
    chip_euclid = std::max(chip_euclid, (alone - want).norm().item<double>());
    if (rec.at("central_face").is_null()) continue;
    const int central = SelectFace(*faces, FaceSelection::kCentral, rgb.cols, rgb.rows);
    if (central != rec.at("central_face").get<int>()) {
      ++central_mismatches;
      continue;
    }
    const cv::Mat ours = model.Align(rgb, (*faces)[static_cast<size_t>(central)]);
    const auto descriptor = model.embedder().Features({ours}).value()[0].to(torch::kFloat64);
    end_to_end = std::max(end_to_end, (descriptor - Vec(rec.at("descriptor"))).norm().item<double>());
  }
  checks->Add("images whose face count differs", face_count_mismatches, 0);
  checks->Add("images whose central face differs", central_mismatches, 0);
  checks->Add("box, max abs diff (px)", box, 2.0);
  checks->Add("landmarks, max abs diff (px)", landmark, 2.0);
  checks->Add("score, max abs diff", score, 1e-3);
  checks->Add("descriptor on reference chip, max abs diff", chip_abs, 1e-3);
  checks->Add("descriptor on reference chip, Euclidean", chip_euclid, 5e-3);
  checks->Add("descriptor end to end, Euclidean", end_to_end, 0.03);
}

// Runs `fn` after `warmup` calls until `seconds` have passed (at least 3 times); milliseconds per call.
template <typename Fn>
double TimeMs(double seconds, Fn&& fn, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) fn();
  int calls = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  while (calls < 3 || elapsed < seconds) {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return 1000.0 * elapsed / calls;
}

// Descriptor ms per chip by batch size: the backbone in one pass (Embedder would split large batches),
// with the copies to and from the device and the wait for it, as the service pays them.
Json TimeDescriptor(const FaceModel& model, const std::vector<cv::Mat>& chips, double seconds) {
  torch::NoGradGuard no_grad;
  const auto& backbone = model.embedder().backbone();
  Json out = Json::array();
  double best = 1e300, batch1 = 0;
  for (const int batch : {1, 2, 4, 8, 16, 32, 64, 128, 256}) {
    std::vector<cv::Mat> input;
    for (int i = 0; i < batch; ++i) input.push_back(chips[static_cast<size_t>(i) % chips.size()]);
    const torch::Tensor x = ChipsToTensor(input).value();
    const double ms = TimeMs(seconds, [&] { backbone->forward(x.to(model.device())).to(torch::kCPU); });
    const double per_chip = ms / batch;
    if (batch == 1) batch1 = per_chip;
    best = std::min(best, per_chip);
    out.push_back({{"batch", batch}, {"ms_per_call", ms}, {"ms_per_chip", per_chip}});
    std::printf("descriptor batch %3d: %8.3f ms/call %7.3f ms/chip\n", batch, ms, per_chip);
  }
  std::printf("descriptor batch 1 / best batch: %.2fx\n", batch1 / best);
  return {{"by_batch", out}, {"batch1_over_best", batch1 / best}};
}

Json TimeMtcnn(const FaceModel& model, const cv::Mat& small, const cv::Mat& group, double seconds) {
  Json out = Json::array();
  const DetectorOptions options;
  const MtcnnDetector& detector = model.detector();
  for (const auto& [w, h] : std::vector<std::pair<int, int>>{{250, 250}, {640, 480}, {1280, 720}, {1920, 1080}}) {
    cv::Mat rgb = w == 250 ? small : group;
    if (rgb.cols != w || rgb.rows != h) cv::resize(rgb, rgb, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    double s1 = 0, s2 = 0, s3 = 0;
    int calls = 0;
    size_t faces = 0;
    for (int i = 0; i < 3; ++i) detector.Detect(rgb, options).IgnoreError();  // warm-up, not in the stage sums
    const double total = TimeMs(
        seconds,
        [&] {
          const MtcnnStageTimes t = DetectStageByStage(detector, rgb, options);
          s1 += t.pnet_ms;
          s2 += t.rnet_ms;
          s3 += t.onet_ms;
          faces = t.faces;
          ++calls;
        },
        /*warmup=*/0);
    out.push_back({{"width", w},
                   {"height", h},
                   {"faces", faces},
                   {"ms", total},
                   {"stage_ms", {s1 / calls, s2 / calls, s3 / calls}}});
    std::printf("mtcnn %4dx%-4d: %8.2f ms (P %.2f, R %.2f, O %.2f), %zu faces\n", w, h, total, s1 / calls, s2 / calls,
                s3 / calls, faces);
  }
  return out;
}

// Whole faces as Embed RPCs see them: detect, cut the bundle's test-time crops, embed. One request at a
// time (embed batch = one face), against the faces of `requests` requests embedded together (what the
// dynamic batcher does across concurrent RPCs; detection stays per image either way).
Json TimeFaces(const FaceModel& model, const std::vector<cv::Mat>& images, int requests, double seconds) {
  const DetectorOptions options;
  const auto cut = [&](const cv::Mat& rgb) {
    const auto faces = model.Detect(rgb, options);
    if (!faces.ok() || faces->empty()) throw std::runtime_error("no face in a timing image");
    return model.Cut(rgb,
                     (*faces)[static_cast<size_t>(SelectFace(*faces, FaceSelection::kCentral, rgb.cols, rgb.rows))]);
  };
  std::vector<cv::Mat> batch_images;
  for (int i = 0; i < requests; ++i) batch_images.push_back(images[static_cast<size_t>(i) % images.size()]);
  const double one_at_a_time = TimeMs(seconds, [&] {
    for (const cv::Mat& rgb : batch_images) model.Embed({cut(rgb)}).value();
  });
  const double batched = TimeMs(seconds, [&] {
    std::vector<FaceViews> faces;
    for (const cv::Mat& rgb : batch_images) faces.push_back(cut(rgb));
    model.Embed(faces).value();
  });
  std::vector<FaceViews> faces;
  for (const cv::Mat& rgb : batch_images) faces.push_back(cut(rgb));
  const double embed_only_one = TimeMs(seconds, [&] {
    for (const FaceViews& f : faces) model.Embed({f}).value();
  });
  const double embed_only_batched = TimeMs(seconds, [&] { model.Embed(faces).value(); });
  const double views = static_cast<double>(model.test_time().views.size());
  std::printf(
      "faces (%d requests, %.0f chips each): one at a time %.1f faces/s, batched %.1f faces/s (%.2fx); "
      "embed alone %.1f vs %.1f faces/s (%.2fx)\n",
      requests, views, 1000.0 * requests / one_at_a_time, 1000.0 * requests / batched, one_at_a_time / batched,
      1000.0 * requests / embed_only_one, 1000.0 * requests / embed_only_batched, embed_only_one / embed_only_batched);
  return {{"requests", requests},
          {"chips_per_face", views},
          {"faces_per_s_one_at_a_time", 1000.0 * requests / one_at_a_time},
          {"faces_per_s_batched", 1000.0 * requests / batched},
          {"batched_over_one_at_a_time", one_at_a_time / batched},
          {"embed_only_faces_per_s_one_at_a_time", 1000.0 * requests / embed_only_one},
          {"embed_only_faces_per_s_batched", 1000.0 * requests / embed_only_batched},
          {"embed_only_batched_over_one_at_a_time", embed_only_one / embed_only_batched}};
}

// The service's own batched path (core/serving's BatchedEngine with the server's default batching): C
// callers each detect one image and embed its central face, as concurrent Embed RPCs do, against one caller
// doing the same. The ratio is what dynamic batching buys on this device through the serving code itself.
Json TimeServing(const std::shared_ptr<const FaceModel>& model, const std::vector<cv::Mat>& images, int callers,
                 double seconds) {
  auto engine = BatchedEngine::Create(model, BatchedEngineOptions{}, nullptr);
  if (!engine.ok()) throw std::runtime_error(std::string(engine.status().message()));
  const auto run = [&](int threads) {
    std::atomic<int64_t> faces{0}, failures{0};
    const auto stop_at =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (size_t k = static_cast<size_t>(t); Clock::now() < stop_at; k += static_cast<size_t>(threads)) {
          const cv::Mat& rgb = images[k % images.size()];
          const auto found = (*engine)->Detect({DetectRequest{rgb, model->spec().detector_defaults}}, CallBudget{});
          if (!found.ok() || found->front().empty()) {
            ++failures;
            continue;
          }
          const auto& detected = found->front();
          const int central = SelectFace(detected, FaceSelection::kCentral, rgb.cols, rgb.rows);
          const auto embedded =
              (*engine)->Embed({FaceToEmbed{&rgb, detected[static_cast<size_t>(central)]}}, CallBudget{});
          if (embedded.ok()) {
            ++faces;
          } else {
            ++failures;
          }
        }
      });
    }
    for (auto& thread : pool) thread.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    return std::make_pair(static_cast<double>(faces.load()) / elapsed, failures.load());
  };
  const auto [one, one_failures] = run(1);
  const auto [many, many_failures] = run(callers);
  (*engine)->Shutdown();
  std::printf("serving path (BatchedEngine, server defaults): 1 caller %.1f faces/s, %d callers %.1f faces/s (%.2fx)\n",
              one, callers, many, many / one);
  return {{"callers", callers},
          {"faces_per_s_one_caller", one},
          {"faces_per_s_many_callers", many},
          {"many_over_one", many / one},
          {"failures", one_failures + many_failures}};
}

absl::StatusOr<std::shared_ptr<const FaceModel>> LoadModel(const Options& o, torch::Device device) {
  auto model = FaceModel::Load(o.model, device);
  if (model.ok() || o.tfjs_weights.empty()) return model;
  // A bundle written by another LibTorch may not load here; the tfjs weights always import.
  std::printf("bundle %s did not load (%s); importing %s\n", o.model.c_str(),
              std::string(model.status().message()).c_str(), o.tfjs_weights.c_str());
  TfjsImportOptions import;
  import.weights_dir = o.tfjs_weights;
  import.bundle_dir = o.model + ".imported";
  import.source = "tfjs weights (cuda_check)";
  const auto spec = ImportFaceApiWeights(import);
  if (!spec.ok()) return spec.status();
  return FaceModel::Load(import.bundle_dir, device);
}

int Run(const Options& o) {
  const auto device = ParseDevice(o.device);
  if (!device.ok()) {
    std::fprintf(stderr, "%s\n", std::string(device.status().message()).c_str());
    return 2;
  }
  const auto model = LoadModel(o, *device);
  if (!model.ok()) {
    std::fprintf(stderr, "model: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  const FaceModel& m = **model;
  std::printf("device %s, LibTorch %s, %d CPU threads, model %s, test-time %zu chips per face\n",
              m.device().str().c_str(), TORCH_VERSION, torch::get_num_threads(), m.model_id().c_str(),
              m.test_time().views.size());

  Json report = {{"device", m.device().str()},
                 {"libtorch", TORCH_VERSION},
                 {"cpu_threads", torch::get_num_threads()},
                 {"model_id", m.model_id()}};
  Checks checks;
  const Json records = ReadJson(o.goldens + "/lfw_pipeline.json").at("images");
  const auto inputs = ReadInputs(o.inputs);
  CheckNets(m, o.goldens, &checks);
  CheckPipeline(m, records, inputs, &checks);
  report["checks"] = checks.rows;
  report["all_checks_pass"] = checks.all_pass;

  std::vector<cv::Mat> chips, lfw;
  for (const Json& rec : records) {
    chips.push_back(inputs.at(rec.at("name").get<std::string>() + ".chip"));
    if (!rec.contains("op") && !rec.at("central_face").is_null()) lfw.push_back(inputs.at(rec.at("name")));
  }
  report["descriptor"] = TimeDescriptor(m, chips, o.seconds);
  report["mtcnn"] = TimeMtcnn(m, lfw.front(), inputs.at("group"), o.seconds);
  report["faces"] = Json::array({TimeFaces(m, lfw, 16, o.seconds), TimeFaces(m, lfw, 64, o.seconds)});
  report["serving"] = Json::array({TimeServing(*model, lfw, 16, o.seconds), TimeServing(*model, lfw, 64, o.seconds)});

  if (!o.out.empty()) {
    std::ofstream out(o.out);
    out << report.dump(1) << "\n";
  }
  std::printf("%s\n", checks.all_pass ? "all checks pass" : "SOME CHECKS FAILED");
  return checks.all_pass ? 0 : 1;
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a run cut short by a time limit still shows its lines
  veriface::Options o;
  CLI::App app{"Checks the pipeline against the goldens on one device and times it"};
  app.add_option("--model", o.model, "model bundle")->required();
  app.add_option("--tfjs-weights", o.tfjs_weights,
                 "face-api.js weights, imported into MODEL.imported when the bundle does not load");
  app.add_option("--goldens", o.goldens, "reference/goldens")->required();
  app.add_option("--inputs", o.inputs, "raw images from prepare_inputs.py")->required();
  app.add_option("--device", o.device, "cpu, cuda:N or auto")->capture_default_str();
  app.add_option("--out", o.out, "report (JSON)");
  app.add_option("--seconds", o.seconds, "per timed case")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return veriface::Run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_check: %s\n", e.what());
    return 1;
  }
}
