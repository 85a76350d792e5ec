// Gallery Identify against the machine's own memory bandwidth, measured in the same run.
//
// For each gallery size (10k, 100k, 1M random unit 128-D templates, two per identity) the program first
// times a streaming read of a buffer as large as the gallery's matrix (the bandwidth bound: Identify
// cannot be faster than reading its matrix once), then times Identify. The Identify rows report
// ms_per_query, bound_ms (matrix bytes / measured bandwidth) and ratio = ms_per_query / bound_ms.
//
// The gallery is served from an in-memory snapshot store: the store plays no part in Identify, and
// committing a million enrolments to SQLite one by one would only slow the set-up.

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/gallery/gallery.h"
#include "tests/gallery/gallery_testing.h"

namespace veriface {
namespace {

constexpr int64_t kDim = 128;
constexpr int kTemplatesPerIdentity = 2;

// Hands a prepared snapshot to Gallery::Open. Identify never reaches the store; the writes are answered
// as a store would (the identity as written, no receipts) without keeping anything.
class SnapshotStore : public GalleryStore {
 public:
  explicit SnapshotStore(StoreSnapshot snapshot) : snapshot_(std::move(snapshot)) {}
  std::string kind() const override { return "bench-snapshot"; }
  absl::StatusOr<StoreSnapshot> Load() override { return std::move(snapshot_); }
  absl::Status BindModel(const std::string&, int64_t) override { return absl::OkStatus(); }
  absl::Status CreateGallery(const GalleryRecord&) override { return absl::OkStatus(); }
  absl::StatusOr<int64_t> DeleteGallery(const std::string&) override { return 0; }
  absl::StatusOr<IdentityState> AddTemplates(const TemplateWrite& write) override {
    return IdentityState{write.identity, write.templates};
  }
  absl::StatusOr<int64_t> DeleteIdentity(const std::string&, const std::string&, const std::string&,
                                         const WriteReceipt&) override {
    return 0;
  }
  absl::StatusOr<std::optional<WriteReceipt>> FindReceipt(const std::string&) override { return std::nullopt; }
  absl::Status PruneReceipts(int64_t) override { return absl::OkStatus(); }

 private:
  StoreSnapshot snapshot_;
};

using testing::RandomUnit;

// One gallery per size, built once and kept for the whole run: its default collection holds them all.
Gallery& GalleryOfSize(int64_t templates) {
  static std::map<int64_t, std::unique_ptr<Gallery>> galleries;
  auto& slot = galleries[templates];
  if (slot == nullptr) {
    std::mt19937 rng(42);
    StoreSnapshot snapshot;
    snapshot.model_id = "bench-model";
    snapshot.embedding_dim = kDim;
    GalleryContents contents;
    contents.record = GalleryRecord{kDefaultGalleryName, 0, 0};
    const int64_t identities = templates / kTemplatesPerIdentity;
    contents.identities.reserve(identities);
    for (int64_t i = 0; i < identities; ++i) {
      contents.identities.push_back(IdentityState{IdentityRecord{absl::StrCat("person-", i), {}, 0, 0}, {}});
    }
    // Template t belongs to identity t % identities. (The collection lays each identity's templates out
    // together as it loads them, so the matrix rows, and Identify's per-identity updates, stay in order.)
    for (int64_t t = 0; t < templates; ++t) {
      IdentityState& owner = contents.identities[t % identities];
      owner.templates.push_back(TemplateRecord{
          absl::StrFormat("%032x", t), owner.record.identity_id, "bench-model", RandomUnit(rng), 0, {}, false});
    }
    snapshot.galleries.push_back(std::move(contents));
    GalleryLimits limits;
    limits.max_templates = templates;
    auto gallery = Gallery::Open(std::make_unique<SnapshotStore>(std::move(snapshot)), "bench-model", kDim, limits);
    if (!gallery.ok()) {
      fprintf(stderr, "cannot build the gallery: %s\n", std::string(gallery.status().message()).c_str());
      std::abort();
    }
    slot = std::move(*gallery);
  }
  return *slot;
}

// Sum of every float in [data, data + n): a pure streaming read with enough independent
// accumulators that the loads, not the adds, set the pace.
#if defined(__x86_64__)
__attribute__((target("avx2"))) float StreamSum(const float* data, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(data + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(data + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(data + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(data + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float sum = 0;
  for (float x : lanes) sum += x;
  for (; i < n; ++i) sum += data[i];
  return sum;
}
#else
float StreamSum(const float* data, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += data[i + l];
  }
  float sum = 0;
  for (float x : acc) sum += x;
  for (; i < n; ++i) sum += data[i];
  return sum;
}
#endif

void BM_StreamRead(benchmark::State& state) {
  const int64_t templates = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const int64_t n = templates * kDim;
  std::vector<float> buffer(n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (auto& x : buffer) x = uniform(rng);
  for (auto _ : state) {
    if (threads == 1) {
      benchmark::DoNotOptimize(StreamSum(buffer.data(), n));
    } else {
      std::vector<std::thread> pool;
      std::vector<float> sums(threads);
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
          sums[t] = StreamSum(buffer.data() + begin, end - begin);
        });
      }
      for (auto& th : pool) th.join();
      benchmark::DoNotOptimize(sums.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
  state.counters["matrix_MB"] = n * sizeof(float) / 1e6;
}

void BM_Identify(benchmark::State& state) {
  const int64_t templates = state.range(0);
  auto found = GalleryOfSize(templates).Find("");
  if (!found.ok()) {
    state.SkipWithError(std::string(found.status().message()).c_str());
    return;
  }
  const std::shared_ptr<const Collection> collection = *std::move(found);
  std::mt19937 rng(7);
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 16; ++i) queries.push_back(RandomUnit(rng));
  size_t q = 0;
  for (auto _ : state) {
    auto matches = collection->Identify(queries[q++ % queries.size()], 10, 0.3f);
    benchmark::DoNotOptimize(matches);
  }
  const int64_t bytes = templates * kDim * static_cast<int64_t>(sizeof(float));
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["ms_per_query"] =
      benchmark::Counter(1e-3 * state.iterations(), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace
}  // namespace veriface

// Each size: bandwidth on 1 and 2 threads, then Identify. Order matters only for readability; the
// ratio is computed from the JSON by bench/gallery/run_gallery_bench.sh.
int main(int argc, char** argv) {
  for (int64_t size : {10'000, 100'000, 1'000'000}) {
    for (int threads : {1, 2}) {
      benchmark::RegisterBenchmark("BM_StreamRead", veriface::BM_StreamRead)
          ->Args({size, threads})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
    benchmark::RegisterBenchmark("BM_Identify", veriface::BM_Identify)
        ->Arg(size)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
