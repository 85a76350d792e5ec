// Embeds LFW images with a model bundle for the index benchmark (bench/index/index_bench.cc), as the
// service would embed an enrolment: decode, detect with the bundle's detector defaults, the central face,
// the bundle's test-time crops and flip, unit embedding. Images without a face are skipped (counted).
//
//   lfw_embeddings --lfw ../shared/data/lfw --model models/default --people 1500 --per-person 2
//       --out .cache/index-bench/lfw_embeddings.bin
//
// People: the first --people (by name) with at least two images; per person the first --per-person
// images (by file name). The first two are taken person by person and the rest round by round, so that
// a run stopped by --max-seconds still leaves a template and a query for as many people as it reached. A cache that
// exists is read first and its images are not embedded again: a later run with a larger --per-person only adds images.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/index/embedding_cache.h"
#include "core/common/device.h"
#include "core/common/file_util.h"
#include "core/common/openmp_env.h"
#include "core/detect/face.h"
#include "core/image/decode.h"
#include "core/model/face_model.h"
#include "core/progress/progress.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string lfw = "../shared/data/lfw";
  std::string model_dir = "models/default";
  std::string out = ".cache/index-bench/lfw_embeddings.bin";
  int people = 1500;
  int per_person = 2;
  int batch = 16;
  int threads = 2;
  double max_seconds = 0;  // 0: no limit
};

struct Job {
  std::string person, path;
};

// The people with >= 2 images, by name, each with their image paths by file name.
std::vector<std::pair<std::string, std::vector<std::string>>> ListPeople(const std::string& lfw) {
  std::vector<std::pair<std::string, std::vector<std::string>>> people;
  for (const fs::directory_entry& d : fs::directory_iterator(lfw)) {
    if (!d.is_directory()) continue;
    std::vector<std::string> images;
    for (const fs::directory_entry& f : fs::directory_iterator(d.path())) {
      if (f.is_regular_file() && f.path().extension() == ".jpg") images.push_back(f.path().string());
    }
    if (images.size() < 2) continue;
    std::sort(images.begin(), images.end());
    people.emplace_back(d.path().filename().string(), std::move(images));
  }
  std::sort(people.begin(), people.end());
  return people;
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"lfw_embeddings: LFW embeddings for the index benchmark"};
  app.add_option("--lfw", o.lfw, "LFW folder (Person/Person_NNNN.jpg)")->capture_default_str();
  app.add_option("--model", o.model_dir, "model bundle")->capture_default_str();
  app.add_option("--out", o.out, "embedding cache to write (extended when it exists)")->capture_default_str();
  app.add_option("--people", o.people, "people with >= 2 images, first by name")->capture_default_str();
  app.add_option("--per-person", o.per_person, "images per person, first by file name")->capture_default_str();
  app.add_option("--batch", o.batch, "faces embedded together")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "LibTorch intra-op threads")->capture_default_str();
  app.add_option("--max-seconds", o.max_seconds, "stop (keeping what is done) after this long; 0: no limit");
  CLI11_PARSE(app, argc, argv);

  SetTorchThreads(o.threads);
  torch::NoGradGuard no_grad;
  const auto model = FaceModel::Load(o.model_dir, torch::kCPU);
  if (!model.ok()) {
    std::cerr << "lfw_embeddings: " << model.status().message() << "\n";
    return 1;
  }
  const FaceModel& m = **model;

  std::vector<bench::LfwEmbedding> records;
  uint32_t dim = 0;
  if (fs::exists(o.out)) {
    auto old = bench::ReadEmbeddingCache(o.out, &dim);
    if (!old.ok()) {
      std::cerr << "lfw_embeddings: " << old.status().message() << "\n";
      return 1;
    }
    records = std::move(*old);
    std::cerr << "lfw_embeddings: " << records.size() << " embeddings already in " << o.out << "\n";
  }
  std::set<std::string> done;
  for (const bench::LfwEmbedding& r : records) done.insert(r.path);
  // Images without a face are remembered beside the cache, so that a later run does not retry them.
  const std::string faceless_path = o.out + ".faceless";
  {
    const auto text = ReadFileToString(faceless_path);
    if (text.ok()) {
      size_t start = 0;
      while (start < text->size()) {
        const size_t end = std::min(text->find('\n', start), text->size());
        if (end > start) done.insert(text->substr(start, end - start));
        start = end + 1;
      }
    }
  }

  auto people = ListPeople(o.lfw);
  if (static_cast<int>(people.size()) > o.people) people.resize(static_cast<size_t>(o.people));
  // The first two images person by person, so that a run stopped early leaves whole pairs (a template
  // and a query); beyond two, round by round.
  std::vector<Job> jobs;
  const auto take = [&](const std::string& name, const std::vector<std::string>& images, int i) {
    if (i < o.per_person && i < static_cast<int>(images.size()) && !done.count(images[static_cast<size_t>(i)])) {
      jobs.push_back({name, images[static_cast<size_t>(i)]});
    }
  };
  for (const auto& [name, images] : people) {
    take(name, images, 0);
    take(name, images, 1);
  }
  for (int round = 2; round < o.per_person; ++round) {
    for (const auto& [name, images] : people) take(name, images, round);
  }
  std::cerr << "lfw_embeddings: " << people.size() << " people with >= 2 images, " << jobs.size()
            << " images to embed\n";

  fs::create_directories(fs::path(o.out).parent_path().empty() ? fs::path(".") : fs::path(o.out).parent_path());
  const auto start = Clock::now();
  int64_t faceless = 0, embedded = 0;
  std::string faceless_lines;
  ProgressBar progress("embed", static_cast<int64_t>(jobs.size()), "images", &std::cerr);
  const auto save = [&]() -> bool {
    if (dim == 0) return true;
    const absl::Status s = bench::WriteEmbeddingCache(o.out, dim, records);
    if (!s.ok()) std::cerr << "lfw_embeddings: " << s.message() << "\n";
    if (!faceless_lines.empty()) {
      std::ofstream f(faceless_path, std::ios::app);
      f << faceless_lines;
      faceless_lines.clear();
    }
    return s.ok();
  };
  size_t next = 0;
  bool stopped = false;
  while (next < jobs.size()) {
    if (o.max_seconds > 0 && std::chrono::duration<double>(Clock::now() - start).count() > o.max_seconds) {
      stopped = true;
      break;
    }
    std::vector<FaceViews> faces;
    std::vector<const Job*> owners;
    for (; next < jobs.size() && static_cast<int>(faces.size()) < o.batch; ++next) {
      const Job& job = jobs[next];
      const auto bytes = ReadFileToString(job.path);
      if (!bytes.ok()) {
        std::cerr << "lfw_embeddings: " << bytes.status().message() << "\n";
        return 1;
      }
      const auto rgb = DecodeImage(*bytes);
      if (!rgb.ok()) {
        std::cerr << "lfw_embeddings: " << job.path << ": " << rgb.status().message() << "\n";
        return 1;
      }
      const auto detections = m.Detect(*rgb, m.spec().detector_defaults);
      if (!detections.ok()) {
        std::cerr << "lfw_embeddings: " << job.path << ": " << detections.status().message() << "\n";
        return 1;
      }
      const int pick = SelectFace(*detections, FaceSelection::kCentral, rgb->cols, rgb->rows);
      if (pick < 0) {
        ++faceless;
        faceless_lines += job.path + "\n";
        continue;
      }
      faces.push_back(m.Cut(*rgb, (*detections)[static_cast<size_t>(pick)]));
      owners.push_back(&job);
    }
    if (!faces.empty()) {
      const auto e = m.Embed(faces);
      if (!e.ok()) {
        std::cerr << "lfw_embeddings: embed: " << e.status().message() << "\n";
        return 1;
      }
      const torch::Tensor t = e->to(torch::kFloat32).contiguous();
      const uint32_t d = static_cast<uint32_t>(t.size(1));
      if (dim == 0) dim = d;
      if (d != dim) {
        std::cerr << "lfw_embeddings: model gives " << d << "-D embeddings, the cache holds " << dim << "-D\n";
        return 1;
      }
      const float* p = t.data_ptr<float>();
      for (size_t i = 0; i < owners.size(); ++i) {
        records.push_back({owners[i]->person, owners[i]->path, std::vector<float>(p + i * d, p + (i + 1) * d)});
      }
      embedded += static_cast<int64_t>(owners.size());
    }
    progress.Update(static_cast<int64_t>(next), absl::StrFormat("%d without a face", faceless));
    if (embedded % 128 < static_cast<int64_t>(o.batch) && !save()) return 1;  // now and then
  }
  progress.Finish(absl::StrFormat("%d without a face", faceless));
  if (!save()) return 1;
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::set<std::string> persons;
  for (const auto& r : records) persons.insert(r.person);
  std::cout << absl::StrFormat(
      "{\"embedded\": %d, \"without_face\": %d, \"seconds\": %.1f, \"images_per_s\": %.2f, \"cache_records\": %d, "
      "\"cache_people\": %d, \"dim\": %d, \"stopped_by_max_seconds\": %s, \"model_id\": \"%s\", \"out\": \"%s\"}\n",
      embedded, faceless, seconds, seconds > 0 ? embedded / seconds : 0.0, records.size(), persons.size(), dim,
      stopped ? "true" : "false", m.model_id(), o.out);
  return 0;
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) {
  veriface::UseShortOpenMpSpins(argv);
  return veriface::Main(argc, argv);
}
