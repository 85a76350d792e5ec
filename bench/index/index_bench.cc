// The gallery indexes (issue 13) over large galleries: real LFW identities planted among distractors that
// look like real embeddings, searched with those identities' other photos.
//
//   index_bench --embeddings .cache/index-bench/lfw_embeddings.bin --templates 1000000
//       --indexes flat,ivf-int8:4096@128/256,faiss:IVF4096,SQ8@16/32/64,faiss:HNSW32 --out /tmp/index_1m.json
//
// Distractors are drawn from a Gaussian fitted to the LFW embeddings (their mean and full covariance,
// sampled through its Cholesky factor) and L2-normalised: uniform points on the sphere would be far
// easier to tell from a real face (their cosines to a query sit near 0, a real other person's near 0.6),
// and would flatter every approximate index. The gallery is the distractors plus one template (the first
// embedded image) per LFW person, at random slots; the queries are the second images of the people with
// two. Ground truth is the exact fp32 top 10 (FlatIndex, or the same scan batched over all queries when
// --truth batched, checked against FlatIndex on the queries FlatIndex is timed on).
//
// Per index: build time (BuildIndex, the product's path), memory_bytes() per template and the process's
// resident memory, p50/p99 of one Search(k=10) per query on one thread (one Identify call), recall@1 and
// recall@10 against the ground truth, the LFW top-1 identification accuracy (the right person first), and
// for the approximate ones the same after fp32 re-ranking of k*rerank candidates (as Collection does).
// Then enrol (row write + Add) and delete (Remove + row cleared) of --churn new templates, one call each.
// flat-fp32 and flat-int8 are timed in the same loop, interleaved query by query, for their speed ratio.
// The JSON is rewritten after each index, so an interrupted run keeps what it measured.

#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "bench/index/embedding_cache.h"
#include "core/gallery/dot_kernel.h"
#include "core/gallery/faiss_index.h"
#include "core/gallery/flat_index.h"
#include "core/gallery/gallery_index.h"
#include "core/gallery/index_factory.h"
#include "core/gallery/index_options.h"
#include "core/gallery/ivf_int8_index.h"

namespace veriface {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }
double Ms(Clock::time_point since) { return std::chrono::duration<double, std::milli>(Clock::now() - since).count(); }

void Die(const std::string& what) {
  std::cerr << "index_bench: " << what << "\n";
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what + ": " + std::string(v.status().message()));
  return *std::move(v);
}
void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + std::string(s.message()));
}

int64_t StatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::strlen(key)));
  }
  return -1;
}
double RssGB() { return StatusKb("VmRSS:") / 1e6 * 1.024; }
double PeakRssGB() { return StatusKb("VmHWM:") / 1e6 * 1.024; }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = static_cast<size_t>(std::ceil(pos));
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

void Normalize(float* v, int64_t dim) {
  double n = 0;
  for (int64_t j = 0; j < dim; ++j) n += static_cast<double>(v[j]) * v[j];
  const float inv = n > 0 ? static_cast<float>(1.0 / std::sqrt(n)) : 0.0F;
  for (int64_t j = 0; j < dim; ++j) v[j] *= inv;
}

// ---- the distractor model: a Gaussian fitted to the real embeddings ----

struct Gaussian {
  int64_t dim = 0;
  std::vector<float> mean;
  // The Cholesky factor L of the covariance (C = L L^T), stored by columns: lt[j * dim + i] = L(i, j), so
  // that x = mean + L z is a sum of column axpys, which vectorise.
  std::vector<float> lt;
  double ridge = 0;
  double trace = 0;
};

Gaussian Fit(const std::vector<bench::LfwEmbedding>& data, int64_t dim) {
  const size_t n = data.size();
  std::vector<double> mean(static_cast<size_t>(dim), 0.0), cov(static_cast<size_t>(dim * dim), 0.0);
  for (const auto& r : data) {
    for (int64_t j = 0; j < dim; ++j) mean[j] += r.embedding[j];
  }
  for (double& m : mean) m /= static_cast<double>(n);
  std::vector<double> c(static_cast<size_t>(dim));
  for (const auto& r : data) {
    for (int64_t j = 0; j < dim; ++j) c[j] = r.embedding[j] - mean[j];
    for (int64_t a = 0; a < dim; ++a) {
      for (int64_t b = 0; b <= a; ++b) cov[a * dim + b] += c[a] * c[b];
    }
  }
  Gaussian g;
  g.dim = dim;
  for (int64_t a = 0; a < dim; ++a) {
    for (int64_t b = 0; b <= a; ++b) cov[a * dim + b] /= static_cast<double>(n - 1);
    g.trace += cov[a * dim + a];
  }
  // A tiny ridge keeps the factorisation well defined should the sample be (nearly) rank-deficient.
  g.ridge = 1e-6 * g.trace / static_cast<double>(dim);
  for (int64_t a = 0; a < dim; ++a) cov[a * dim + a] += g.ridge;
  // Cholesky-Banachiewicz on the lower triangle, in double.
  std::vector<double> l(static_cast<size_t>(dim * dim), 0.0);
  for (int64_t i = 0; i < dim; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      double s = cov[i * dim + j];
      for (int64_t k = 0; k < j; ++k) s -= l[i * dim + k] * l[j * dim + k];
      if (i == j) {
        if (s <= 0) Die("covariance is not positive definite at " + std::to_string(i));
        l[i * dim + i] = std::sqrt(s);
      } else {
        l[i * dim + j] = s / l[j * dim + j];
      }
    }
  }
  g.mean.assign(mean.begin(), mean.end());
  g.lt.assign(static_cast<size_t>(dim * dim), 0.0F);
  for (int64_t i = 0; i < dim; ++i) {
    for (int64_t j = 0; j <= i; ++j) g.lt[j * dim + i] = static_cast<float>(l[i * dim + j]);
  }
  return g;
}

// Rows [first, first + count) of the stream seeded by `seed`: row r is drawn from its own generator
// (seed, r / kRowsPerStream), so the result does not depend on the number of threads.
constexpr int64_t kRowsPerStream = 65536;

void SampleRows(const Gaussian& g, uint64_t seed, int64_t first, int64_t count, float* out, int threads) {
  const int64_t dim = g.dim;
  const int64_t begin_stream = first / kRowsPerStream,
                end_stream = (first + count + kRowsPerStream - 1) / kRowsPerStream;
  std::atomic<int64_t> next{begin_stream};
  auto work = [&] {
    std::vector<float> z(static_cast<size_t>(dim));
    for (int64_t s = next++; s < end_stream; s = next++) {
      std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(s));
      std::normal_distribution<float> normal(0.0F, 1.0F);
      for (int64_t r = s * kRowsPerStream; r < (s + 1) * kRowsPerStream; ++r) {
        for (int64_t j = 0; j < dim; ++j) z[j] = normal(rng);
        if (r < first || r >= first + count) continue;  // drawn anyway, to keep the stream aligned
        float* x = out + (r - first) * dim;
        std::copy(g.mean.begin(), g.mean.end(), x);
        for (int64_t j = 0; j < dim; ++j) {
          const float zj = z[j];
          const float* col = g.lt.data() + j * dim;
          for (int64_t i = j; i < dim; ++i) x[i] += col[i] * zj;
        }
        Normalize(x, dim);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

// ---- search helpers ----

struct Query {
  std::vector<float> v;
  int person = -1;
  int64_t true_slot = -1;  // the person's planted template
};

// Top-k by fp32 inner product over live slots, for many queries at once: each thread takes a share of the
// queries and scans the rows in blocks small enough to stay in cache while all its queries use them.
std::vector<std::vector<IndexHit>> BatchedExact(const SlotRows& rows, const std::vector<Query>& queries, int64_t k,
                                                int threads) {
  const int64_t n = static_cast<int64_t>(queries.size());
  std::vector<std::vector<IndexHit>> out(static_cast<size_t>(n));
  auto work = [&](int64_t q0, int64_t q1) {
    constexpr int64_t kBlock = 1024;
    const auto better = [](const IndexHit& a, const IndexHit& b) {
      return a.score != b.score ? a.score > b.score : a.label < b.label;
    };
    std::vector<std::vector<IndexHit>> heaps(static_cast<size_t>(q1 - q0));
    std::vector<float> scores(kBlock);
    for (int64_t start = 0; start < rows.slots(); start += kBlock) {
      const int64_t count = std::min(kBlock, rows.slots() - start);
      for (int64_t q = q0; q < q1; ++q) {
        DotRows(rows.row(start), count, rows.dim, queries[static_cast<size_t>(q)].v.data(), scores.data());
        auto& heap = heaps[static_cast<size_t>(q - q0)];
        for (int64_t i = 0; i < count; ++i) {
          if (rows.owner[static_cast<size_t>(start + i)] < 0) continue;
          const IndexHit h{start + i, scores[static_cast<size_t>(i)]};
          if (static_cast<int64_t>(heap.size()) < k) {
            heap.push_back(h);
            std::push_heap(heap.begin(), heap.end(), better);
          } else if (better(h, heap.front())) {
            std::pop_heap(heap.begin(), heap.end(), better);
            heap.back() = h;
            std::push_heap(heap.begin(), heap.end(), better);
          }
        }
      }
    }
    for (int64_t q = q0; q < q1; ++q) {
      auto& heap = heaps[static_cast<size_t>(q - q0)];
      std::sort_heap(heap.begin(), heap.end(), better);
      out[static_cast<size_t>(q)] = std::move(heap);
    }
  };
  std::vector<std::thread> pool;
  const int64_t per = (n + threads - 1) / threads;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, std::min(n, t * per), std::min(n, (t + 1) * per));
  work(0, std::min(n, per));
  for (auto& t : pool) t.join();
  return out;
}

// Collection's re-ranking: the index's candidates re-scored in fp32 over the rows, best k kept.
std::vector<IndexHit> Rerank(const SlotRows& rows, const float* q, std::vector<IndexHit> hits, int64_t k) {
  for (IndexHit& h : hits) DotRows(rows.row(h.label), 1, rows.dim, q, &h.score);
  std::sort(hits.begin(), hits.end(), [](const IndexHit& a, const IndexHit& b) {
    return a.score != b.score ? a.score > b.score : a.label < b.label;
  });
  if (static_cast<int64_t>(hits.size()) > k) hits.resize(static_cast<size_t>(k));
  return hits;
}

struct Quality {
  double recall1 = 0, recall10 = 0, lfw_top1 = 0, same_top1_as_exact = 0;
  int64_t queries = 0;
};

Quality Score(const std::vector<std::vector<IndexHit>>& got, const std::vector<std::vector<IndexHit>>& truth,
              const std::vector<Query>& queries, const std::vector<int64_t>& which) {
  Quality q;
  for (int64_t i : which) {
    const auto& g = got[static_cast<size_t>(i)];
    const auto& t = truth[static_cast<size_t>(i)];
    if (!g.empty() && !t.empty() && g[0].label == t[0].label) q.recall1 += 1;
    std::set<int64_t> tl;
    for (const auto& h : t) tl.insert(h.label);
    int64_t inter = 0;
    for (const auto& h : g) inter += tl.count(h.label);
    q.recall10 += t.empty() ? 0 : static_cast<double>(inter) / static_cast<double>(t.size());
    if (!g.empty() && g[0].label == queries[static_cast<size_t>(i)].true_slot) q.lfw_top1 += 1;
  }
  q.queries = static_cast<int64_t>(which.size());
  if (q.queries > 0) {
    q.recall1 /= static_cast<double>(q.queries);
    q.recall10 /= static_cast<double>(q.queries);
    q.lfw_top1 /= static_cast<double>(q.queries);
  }
  q.same_top1_as_exact = q.recall1;
  return q;
}

json QualityJson(const Quality& q) {
  return {{"queries", q.queries},
          {"recall_at_1", q.recall1},
          {"recall_at_10", q.recall10},
          {"lfw_top1_accuracy", q.lfw_top1}};
}

json TimesJson(const std::vector<double>& ms) {
  double sum = 0;
  for (double v : ms) sum += v;
  return {{"n", ms.size()},
          {"p50_ms", Percentile(ms, 0.5)},
          {"p90_ms", Percentile(ms, 0.9)},
          {"p99_ms", Percentile(ms, 0.99)},
          {"mean_ms", ms.empty() ? 0 : sum / static_cast<double>(ms.size())},
          {"max_ms", ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end())}};
}

// ---- index specs ----

struct Spec {
  std::string text;  // as given
  IndexOptions options;
  std::vector<int> nprobes;  // IVF: searched at each (empty: options.nprobe only)
  bool flat_pair = false;    // "flat": flat-fp32 and flat-int8, interleaved
};

Spec ParseSpec(const std::string& text, int rerank_factor) {
  Spec s;
  s.text = text;
  s.options.exact_below = 0;
  s.options.rerank_factor = rerank_factor;
  if (text == "flat") {
    s.flat_pair = true;
    return s;
  }
  const bool ivf_int8 = text.rfind("ivf-int8:", 0) == 0;
  if (text.rfind("faiss:", 0) != 0 && !ivf_int8) {
    Die("index spec '" + text + "' is neither flat, ivf-int8:LISTS[@n/n/...] nor faiss:FACTORY[@n/n/...]");
  }
  std::string factory = text.substr(ivf_int8 ? 9 : 6);
  const size_t at = factory.find('@');
  if (at != std::string::npos) {
    for (absl::string_view p : absl::StrSplit(absl::string_view(factory).substr(at + 1), '/')) {
      s.nprobes.push_back(std::stoi(std::string(p)));
    }
    factory = factory.substr(0, at);
  }
  if (ivf_int8) {
    s.options.type = "ivf-int8";
    s.options.ivf_lists = std::stoll(factory);
    if (!s.nprobes.empty()) s.options.ivf_nprobe = s.nprobes.front();
    return s;
  }
  s.options.type = "faiss";
  s.options.faiss_factory = factory;
  if (!s.nprobes.empty()) s.options.nprobe = s.nprobes.front();
  return s;
}

struct Options {
  std::string embeddings = ".cache/index-bench/lfw_embeddings.bin";
  int64_t templates = 1'000'000;
  std::string indexes = "flat";
  std::string out;
  std::string truth = "flat";  // flat | batched
  int64_t flat_queries = 0;    // flat indexes timed on this many queries (0: all)
  int64_t churn = 1000;
  double churn_max_seconds = 60;
  int rerank_factor = 4;
  int threads = 2;  // for building and the ground truth; searches run on one
  uint64_t seed = 13;
  int64_t k = 10;
  int warmup = 20;
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  int Run() {
    omp_set_num_threads(o_.threads);
    result_["command_line"] = command_line_;
    result_["templates"] = o_.templates;
    result_["k"] = o_.k;
    result_["rerank_factor"] = o_.rerank_factor;
    result_["rerank_candidates"] = o_.k * std::max(4, o_.rerank_factor);
    result_["seed"] = o_.seed;
    LoadAndPlant();
    Truth();
    for (const std::string& text : SplitSpecs(o_.indexes)) {
      const Spec spec = ParseSpec(text, o_.rerank_factor);
      if (spec.flat_pair) {
        RunFlatPair();
      } else {
        RunApproximate(spec);
      }
    }
    result_["peak_rss_GB"] = PeakRssGB();
    result_["seconds_total"] = Seconds(start_);
    Write();
    return 0;
  }

  std::string command_line_;

 private:
  // Specs are separated by commas, but faiss factories contain commas too: a new spec starts at "flat",
  // "ivf-int8:" or "faiss:".
  static std::vector<std::string> SplitSpecs(const std::string& all) {
    std::vector<std::string> out;
    for (absl::string_view part : absl::StrSplit(all, ',')) {
      const std::string p(part);
      if (p == "flat" || p.rfind("faiss:", 0) == 0 || p.rfind("ivf-int8:", 0) == 0 || out.empty()) {
        out.push_back(p);
      } else {
        out.back() += "," + p;
      }
    }
    return out;
  }

  void Log(const std::string& s) {
    std::cerr << "[" << static_cast<int>(Seconds(start_)) << " s, rss " << static_cast<int>(RssGB() * 10) / 10.0
              << " GB] " << s << std::endl;
  }

  void Write() {
    if (o_.out.empty()) {
      std::cout << result_.dump(2) << "\n";
      return;
    }
    const std::string tmp = o_.out + ".tmp";
    {
      std::ofstream f(tmp);
      f << result_.dump(2) << "\n";
    }
    std::rename(tmp.c_str(), o_.out.c_str());
  }

  void LoadAndPlant() {
    uint32_t dim32 = 0;
    const auto records = Check(bench::ReadEmbeddingCache(o_.embeddings, &dim32), "embeddings");
    dim_ = dim32;
    // Per person, images by path: the first is enrolled, the second queried.
    std::map<std::string, std::vector<const bench::LfwEmbedding*>> by_person;
    for (const auto& r : records) by_person[r.person].push_back(&r);
    for (auto& [name, v] : by_person) {
      std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->path < b->path; });
    }
    const int64_t people = static_cast<int64_t>(by_person.size());
    if (people > o_.templates) Die("fewer templates than LFW people");
    Log("embeddings: " + std::to_string(records.size()) + " images of " + std::to_string(people) + " people");

    const auto t_fit = Clock::now();
    gauss_ = Fit(records, dim_);
    json fit = {
        {"images", records.size()},
        {"people", people},
        {"dim", dim_},
        {"covariance_trace", gauss_.trace},
        {"ridge", gauss_.ridge},
        {"mean_norm", std::sqrt(std::inner_product(gauss_.mean.begin(), gauss_.mean.end(), gauss_.mean.begin(), 0.0))},
        {"seconds", Seconds(t_fit)}};

    // The gallery: every slot a distractor first, then the planted templates overwrite random slots.
    const auto t_gen = Clock::now();
    rows_.dim = dim_;
    rows_.values.reserve(static_cast<size_t>((o_.templates + o_.churn) * dim_));
    rows_.values.resize(static_cast<size_t>(o_.templates * dim_));
    rows_.owner.reserve(static_cast<size_t>(o_.templates + o_.churn));
    rows_.owner.resize(static_cast<size_t>(o_.templates));
    for (int64_t s = 0; s < o_.templates; ++s) rows_.owner[static_cast<size_t>(s)] = static_cast<int32_t>(s);
    SampleRows(gauss_, o_.seed, 0, o_.templates, rows_.values.data(), o_.threads);
    const double gen_seconds = Seconds(t_gen);
    std::mt19937_64 rng(o_.seed + 1);
    std::set<int64_t> planted;
    std::uniform_int_distribution<int64_t> pick(0, o_.templates - 1);
    while (static_cast<int64_t>(planted.size()) < people) planted.insert(pick(rng));
    std::vector<int64_t> slots(planted.begin(), planted.end());
    std::shuffle(slots.begin(), slots.end(), rng);
    slot_person_.assign(static_cast<size_t>(o_.templates), -1);
    int person = 0;
    for (auto& [name, v] : by_person) {
      const int64_t slot = slots[static_cast<size_t>(person)];
      std::copy(v[0]->embedding.begin(), v[0]->embedding.end(), rows_.values.begin() + slot * dim_);
      Normalize(rows_.values.data() + slot * dim_, dim_);
      slot_person_[static_cast<size_t>(slot)] = person;
      lfw_slots_.push_back(slot);
      if (v.size() >= 2) {
        Query q{v[1]->embedding, person, slot};
        Normalize(q.v.data(), dim_);
        queries_.push_back(std::move(q));
      }
      ++person;
    }
    if (queries_.empty()) Die("no LFW person has two embedded images: nothing to query with");
    Log("gallery: " + std::to_string(o_.templates) + " templates (" + std::to_string(people) + " planted), " +
        std::to_string(queries_.size()) + " queries; distractors drawn in " + std::to_string(gen_seconds) + " s");
    result_["distractor_model"] = fit;
    result_["gallery"] = {{"templates", o_.templates},
                          {"planted_lfw_templates", people},
                          {"distractors", o_.templates - people},
                          {"queries", queries_.size()},
                          {"fp32_rows_GB", static_cast<double>(o_.templates * dim_ * 4) / 1e9},
                          {"distractor_draw_seconds", gen_seconds},
                          {"rss_GB_after_draw", RssGB()}};
    Realism();
    Write();
  }

  // How hard the distractors are: each query's best similarity among the other LFW people's templates,
  // among as many Gaussian distractors, and among as many uniform points on the sphere.
  void Realism() {
    const int64_t p = static_cast<int64_t>(lfw_slots_.size());
    std::vector<float> uniform(static_cast<size_t>(p * dim_));
    std::mt19937_64 rng(o_.seed + 7);
    std::normal_distribution<float> normal;
    for (float& x : uniform) x = normal(rng);
    for (int64_t i = 0; i < p; ++i) Normalize(uniform.data() + i * dim_, dim_);
    std::vector<int64_t> distractors;
    for (int64_t s = 0; s < o_.templates && static_cast<int64_t>(distractors.size()) < p; ++s) {
      if (slot_person_[static_cast<size_t>(s)] < 0) distractors.push_back(s);
    }
    std::vector<double> best_real, best_gauss, best_uniform, genuine;
    double mean_real = 0, mean_gauss = 0;
    int64_t n_real = 0, n_gauss = 0;
    int64_t lfw_only_correct = 0;
    for (const Query& q : queries_) {
      float br = -2, bg = -2, bu = -2, own = 0, best_any = -2;
      int best_person = -1;
      for (int64_t i = 0; i < p; ++i) {
        float s = 0;
        DotRows(rows_.row(lfw_slots_[static_cast<size_t>(i)]), 1, dim_, q.v.data(), &s);
        if (s > best_any) {
          best_any = s;
          best_person = static_cast<int>(i);
        }
        if (i == q.person) {
          own = s;
          continue;
        }
        br = std::max(br, s);
        mean_real += s;
        ++n_real;
        if (i < static_cast<int64_t>(distractors.size())) {
          DotRows(rows_.row(distractors[static_cast<size_t>(i)]), 1, dim_, q.v.data(), &s);
          bg = std::max(bg, s);
          mean_gauss += s;
          ++n_gauss;
        }
        DotRows(uniform.data() + i * dim_, 1, dim_, q.v.data(), &s);
        bu = std::max(bu, s);
      }
      best_real.push_back(br);
      best_gauss.push_back(bg);
      best_uniform.push_back(bu);
      genuine.push_back(own);
      lfw_only_correct += best_person == q.person ? 1 : 0;
    }
    const auto med = [](const std::vector<double>& v) { return Percentile(v, 0.5); };
    result_["distractor_realism"] = {
        {"note", "per query: its best cosine among N others (N = planted LFW people - 1); median over the queries"},
        {"others", p - 1},
        {"median_best_cosine_other_lfw_people", med(best_real)},
        {"median_best_cosine_gaussian_distractors", med(best_gauss)},
        {"median_best_cosine_uniform_sphere", med(best_uniform)},
        {"mean_cosine_other_lfw_people", n_real ? mean_real / n_real : 0},
        {"mean_cosine_gaussian_distractors", n_gauss ? mean_gauss / n_gauss : 0},
        {"median_cosine_genuine_pair", med(genuine)},
        {"lfw_top1_accuracy_without_distractors",
         queries_.empty() ? 0 : static_cast<double>(lfw_only_correct) / static_cast<double>(queries_.size())}};
    Log("realism: " + result_["distractor_realism"].dump());
  }

  void Truth() {
    const auto t = Clock::now();
    truth_mode_ = o_.truth;
    all_.resize(queries_.size());
    std::iota(all_.begin(), all_.end(), 0);
    timed_flat_ = all_;
    if (o_.flat_queries > 0 && o_.flat_queries < static_cast<int64_t>(all_.size())) {
      // An evenly spread subset, the same for every flat index.
      timed_flat_.clear();
      const double step = static_cast<double>(all_.size()) / static_cast<double>(o_.flat_queries);
      for (int64_t i = 0; i < o_.flat_queries; ++i) timed_flat_.push_back(static_cast<int64_t>(i * step));
    }
    // FlatIndex's own loop gives the ground truth only when the flat indexes run first.
    const std::vector<std::string> specs = SplitSpecs(o_.indexes);
    if (o_.truth == "flat" && (specs.empty() || specs.front() != "flat")) truth_mode_ = "batched";
    if (truth_mode_ == "batched") {
      truth_ = BatchedExact(rows_, queries_, o_.k, o_.threads);
      result_["ground_truth"] = {{"method", "exact fp32 scan batched over all queries (DotRows), " +
                                                std::to_string(o_.threads) + " threads; checked against FlatIndex"},
                                 {"seconds", Seconds(t)}};
    } else {
      // Filled in by the flat-fp32 timing loop below, which is FlatIndex itself.
      result_["ground_truth"] = {{"method", "FlatIndex (flat-fp32) Search over every query"}};
    }
    Log("ground truth ready (" + truth_mode_ + ")");
  }

  // flat-fp32 and flat-int8 timed in one loop, alternating which goes first, for their ratio.
  void RunFlatPair() {
    omp_set_num_threads(o_.threads);
    IndexOptions fp32;
    fp32.type = "exact";
    fp32.exact_below = 0;
    IndexOptions int8 = fp32;
    int8.type = "exact-int8";
    int8.rerank_factor = o_.rerank_factor;
    auto t = Clock::now();
    std::unique_ptr<GalleryIndex> a = Check(BuildIndex(fp32, &rows_), "build flat-fp32");
    const double build_a = Seconds(t);
    const double rss0 = RssGB();
    t = Clock::now();
    std::unique_ptr<GalleryIndex> b = Check(BuildIndex(int8, &rows_), "build flat-int8");
    const double build_b = Seconds(t);
    const double rss1 = RssGB();
    Log("flat indexes built: " + a->name() + " " + std::to_string(build_a) + " s, " + b->name() + " " +
        std::to_string(build_b) + " s");

    omp_set_num_threads(1);
    const std::vector<int64_t>& which = truth_mode_ == "batched" ? timed_flat_ : all_;
    for (int i = 0; i < o_.warmup; ++i) {
      const float* q = queries_[static_cast<size_t>(which[static_cast<size_t>(i) % which.size()])].v.data();
      (void)a->Search(q, o_.k);
      (void)b->Search(q, o_.k);
    }
    std::vector<std::vector<IndexHit>> got_a(queries_.size()), got_b(queries_.size());
    std::vector<double> ms_a, ms_b;
    const auto t_loop = Clock::now();
    for (size_t n = 0; n < which.size(); ++n) {
      const int64_t i = which[n];
      const float* q = queries_[static_cast<size_t>(i)].v.data();
      for (int turn = 0; turn < 2; ++turn) {
        const bool first_a = (n % 2 == 0) == (turn == 0);
        GalleryIndex* index = first_a ? a.get() : b.get();
        const auto t0 = Clock::now();
        auto hits = Check(index->Search(q, o_.k), "search " + index->name());
        (first_a ? ms_a : ms_b).push_back(Ms(t0));
        (first_a ? got_a : got_b)[static_cast<size_t>(i)] = std::move(hits);
      }
      if (n % 100 == 99) Log("flat: " + std::to_string(n + 1) + "/" + std::to_string(which.size()) + " queries");
    }
    const double loop_seconds = Seconds(t_loop);
    json truth_check;
    if (truth_mode_ != "batched") {
      truth_ = got_a;
      result_["ground_truth"]["seconds"] = loop_seconds;
    } else {
      // The batched scan must agree with FlatIndex wherever both ran.
      int64_t same = 0;
      for (int64_t i : which) {
        const auto& x = got_a[static_cast<size_t>(i)];
        const auto& y = truth_[static_cast<size_t>(i)];
        bool eq = x.size() == y.size();
        for (size_t j = 0; eq && j < x.size(); ++j) eq = x[j].label == y[j].label;
        same += eq ? 1 : 0;
      }
      result_["ground_truth"]["flatindex_agrees_top10_on"] = same;
      result_["ground_truth"]["flatindex_checked_queries"] = which.size();
    }
    const Quality qa = Score(got_a, truth_, queries_, which), qb = Score(got_b, truth_, queries_, which);
    exact_lfw_top1_ = qa.lfw_top1;
    const double p50a = Percentile(ms_a, 0.5), p50b = Percentile(ms_b, 0.5);
    json ja = {{"index", a->name()},
               {"exact", a->exact()},
               {"build_seconds", build_a},
               {"memory_bytes", a->memory_bytes()},
               {"memory_bytes_per_template", static_cast<double>(a->memory_bytes()) / o_.templates},
               {"rss_GB_after_build", rss0},
               {"search_k10", TimesJson(ms_a)},
               {"quality", QualityJson(qa)}};
    json jb = {{"index", b->name()},
               {"exact", b->exact()},
               {"build_seconds", build_b},
               {"memory_bytes", b->memory_bytes()},
               {"memory_bytes_per_template", static_cast<double>(b->memory_bytes()) / o_.templates},
               {"rss_GB_after_build", rss1},
               {"search_k10", TimesJson(ms_b)},
               {"quality", QualityJson(qb)},
               {"note", "re-scores its k*rerank_factor best int8 candidates in fp32 over the rows (inside Search)"}};
    result_["int8_vs_fp32"] = {{"queries_interleaved", which.size()},
                               {"p50_ms_fp32", p50a},
                               {"p50_ms_int8", p50b},
                               {"speedup_p50", p50b > 0 ? p50a / p50b : 0},
                               {"mean_ms_fp32", TimesJson(ms_a)["mean_ms"]},
                               {"mean_ms_int8", TimesJson(ms_b)["mean_ms"]},
                               {"speedup_mean", TimesJson(ms_a)["mean_ms"].get<double>() /
                                                    std::max(1e-9, TimesJson(ms_b)["mean_ms"].get<double>())},
                               {"same_top1_as_fp32", qb.recall1},
                               {"same_top1_count", static_cast<int64_t>(std::llround(qb.recall1 * qb.queries))},
                               {"lfw_top1_fp32", qa.lfw_top1},
                               {"lfw_top1_int8", qb.lfw_top1}};
    Log("flat-fp32 p50 " + std::to_string(p50a) + " ms, flat-int8 p50 " + std::to_string(p50b) +
        " ms; int8 top-1 same " + std::to_string(qb.recall1));
    result_["indexes"].push_back(ja);
    result_["indexes"].push_back(jb);
    Write();
    result_["indexes"][result_["indexes"].size() - 2]["churn"] = Churn(a.get());
    Write();
    result_["indexes"][result_["indexes"].size() - 1]["churn"] = Churn(b.get());
    Write();
  }

  // FaissIndex takes nprobe at Create (IndexOptions::nprobe) and has no setter, so each of its nprobes is
  // its own build (training included): build times are measured again each time. IvfInt8Index is built
  // once and searched at each nprobe. Enrol and delete cost does not depend on nprobe and is measured
  // after the first.
  void RunApproximate(const Spec& spec) {
    const bool ivf_int8 = spec.options.type == "ivf-int8";
    std::vector<int> nprobes = spec.nprobes;
    if (nprobes.empty()) nprobes.push_back(ivf_int8 ? spec.options.ivf_nprobe : spec.options.nprobe);
    std::unique_ptr<GalleryIndex> index;
    json built;
    for (size_t v = 0; v < nprobes.size(); ++v) {
      IndexOptions options = spec.options;
      (ivf_int8 ? options.ivf_nprobe : options.nprobe) = nprobes[v];
      if (v == 0 || !ivf_int8) {
        index.reset();
        omp_set_num_threads(o_.threads);
        Log("building " + spec.text + " nprobe " + std::to_string(nprobes[v]));
        const double rss_before = RssGB();
        const auto t = Clock::now();
        index = Check(BuildIndex(options, &rows_), "build " + spec.text);
        const double build = Seconds(t);
        const double rss_after = RssGB();
        Log("built " + index->name() + " in " + std::to_string(build) + " s, memory " +
            std::to_string(index->memory_bytes() / 1e9) + " GB");
        built = {{"build_seconds", build},
                 {"build_threads", o_.threads},
                 {"memory_bytes", index->memory_bytes()},
                 {"memory_bytes_per_template", static_cast<double>(index->memory_bytes()) / o_.templates},
                 {"rss_GB_before_build", rss_before},
                 {"rss_GB_after_build", rss_after}};
        if (const auto* ivf = dynamic_cast<const IvfInt8Index*>(index.get()))
          built["list_imbalance"] = ivf->imbalance();
      } else {
        Check(dynamic_cast<IvfInt8Index*>(index.get())->set_nprobe(nprobes[v]), "nprobe");
        built["build_note"] = "the build above, searched at another nprobe";
      }
      const bool ivf = ivf_int8 || options.faiss_factory.find("IVF") != std::string::npos;
      json j = {{"index", index->name()},
                {"spec", spec.text},
                {"nprobe", ivf ? json(nprobes[v]) : json("-")},
                {"ef_search", ivf ? json("-") : json(options.ef_search)},
                {"exact", index->exact()}};
      j.update(built);
      const int64_t want = o_.k * std::max(4, o_.rerank_factor);
      omp_set_num_threads(1);
      for (int i = 0; i < o_.warmup; ++i) {
        (void)index->Search(queries_[static_cast<size_t>(i) % queries_.size()].v.data(), want);
      }
      std::vector<std::vector<IndexHit>> raw(queries_.size()), reranked(queries_.size());
      std::vector<double> ms_raw, ms_rerank;
      for (size_t i = 0; i < queries_.size(); ++i) {
        const float* q = queries_[i].v.data();
        auto t0 = Clock::now();
        raw[i] = Check(index->Search(q, o_.k), "search");
        ms_raw.push_back(Ms(t0));
        t0 = Clock::now();
        reranked[i] = Rerank(rows_, q, Check(index->Search(q, want), "search"), o_.k);
        ms_rerank.push_back(Ms(t0));
      }
      const Quality qr = Score(raw, truth_, queries_, all_), qx = Score(reranked, truth_, queries_, all_);
      j["search_k10"] = TimesJson(ms_raw);
      j["quality"] = QualityJson(qr);
      j["identify_search_k40_fp32_rerank"] = TimesJson(ms_rerank);
      j["quality_reranked"] = QualityJson(qx);
      Log(index->name() + " nprobe " + std::to_string(nprobes[v]) + ": p50 " + std::to_string(Percentile(ms_raw, 0.5)) +
          " ms (rerank " + std::to_string(Percentile(ms_rerank, 0.5)) + " ms), recall@1 " + std::to_string(qr.recall1) +
          " raw, " + std::to_string(qx.recall1) + " reranked; recall@10 " + std::to_string(qr.recall10) + " / " +
          std::to_string(qx.recall10));
      omp_set_num_threads(o_.threads);
      result_["indexes"].push_back(j);
      Write();
      if (v == 0) {
        result_["indexes"].back()["churn"] = Churn(index.get());
        Write();
      }
    }
  }

  // Enrolment and deletion of new templates, one call each, as the collection makes them: the row is
  // written (cleared) and the index told. New slots past the gallery; the gallery is as before afterwards.
  json Churn(GalleryIndex* index) {
    omp_set_num_threads(1);
    const int64_t n = o_.churn;
    std::vector<float> fresh(static_cast<size_t>(n * dim_));
    SampleRows(gauss_, o_.seed + 99, 0, n, fresh.data(), 1);
    std::vector<double> add_ms, remove_ms;
    const auto t_add = Clock::now();
    absl::Status add_status;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t slot = o_.templates + i;
      const float* v = fresh.data() + i * dim_;
      const auto t0 = Clock::now();
      rows_.values.insert(rows_.values.end(), v, v + dim_);
      rows_.owner.push_back(static_cast<int32_t>(slot));
      add_status = index->Add(v, &slot, 1);
      add_ms.push_back(Ms(t0));
      if (!add_status.ok()) break;
      if (Seconds(t_add) > o_.churn_max_seconds) break;
    }
    const int64_t added = static_cast<int64_t>(add_ms.size());
    const auto t_remove = Clock::now();
    absl::Status remove_status;
    for (int64_t i = 0; i < added; ++i) {
      const int64_t slot = o_.templates + i;
      const auto t0 = Clock::now();
      remove_status = index->Remove(&slot, 1);
      rows_.owner[static_cast<size_t>(slot)] = -1;
      std::fill_n(rows_.values.begin() + slot * dim_, dim_, 0.0F);
      remove_ms.push_back(Ms(t0));
      if (!remove_status.ok()) break;
      if (Seconds(t_remove) > o_.churn_max_seconds) break;
    }
    // The rest in one call, so that the index holds none of them when the gallery shrinks back.
    std::vector<int64_t> rest;
    for (int64_t i = static_cast<int64_t>(remove_ms.size()); i < added; ++i) rest.push_back(o_.templates + i);
    double rest_ms = 0;
    if (!rest.empty()) {
      const auto t0 = Clock::now();
      (void)index->Remove(rest.data(), static_cast<int64_t>(rest.size()));
      rest_ms = Ms(t0);
    }
    rows_.owner.resize(static_cast<size_t>(o_.templates));
    rows_.values.resize(static_cast<size_t>(o_.templates * dim_));
    omp_set_num_threads(o_.threads);
    json j = {{"note", "one call per template: row written + Add; Remove + row cleared"},
              {"add", TimesJson(add_ms)},
              {"remove", TimesJson(remove_ms)},
              {"add_status", add_status.ok() ? "OK" : std::string(add_status.message())},
              {"remove_status", remove_status.ok() ? "OK" : std::string(remove_status.message())}};
    if (const auto* f = dynamic_cast<const FaissIndex*>(index)) j["tombstones_after_remove"] = f->tombstones();
    if (!rest.empty()) j["remaining_removed_in_one_call"] = {{"count", rest.size()}, {"ms", rest_ms}};
    Log(index->name() + " churn: add p50 " + std::to_string(Percentile(add_ms, 0.5)) + " ms, remove p50 " +
        std::to_string(Percentile(remove_ms, 0.5)) + " ms (" + std::to_string(remove_ms.size()) + " removes)");
    return j;
  }

  const Options o_;
  const Clock::time_point start_ = Clock::now();
  json result_;
  int64_t dim_ = 0;
  Gaussian gauss_;
  SlotRows rows_;
  std::vector<int> slot_person_;
  std::vector<int64_t> lfw_slots_;
  std::vector<Query> queries_;
  std::vector<int64_t> all_, timed_flat_;
  std::vector<std::vector<IndexHit>> truth_;
  double exact_lfw_top1_ = 0;
  std::string truth_mode_;
};

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"index_bench: the gallery indexes over LFW identities planted among Gaussian distractors"};
  app.add_option("--embeddings", o.embeddings, "cache written by lfw_embeddings")->capture_default_str();
  app.add_option("--templates", o.templates, "gallery size, planted LFW templates included")->capture_default_str();
  app.add_option("--indexes", o.indexes,
                 "flat, ivf-int8:LISTS[@nprobe/nprobe...], faiss:FACTORY[@nprobe/nprobe...], comma separated")
      ->capture_default_str();
  app.add_option("--out", o.out, "JSON to write (rewritten after each index); empty: stdout");
  app.add_option("--truth", o.truth, "flat: FlatIndex over every query; batched: a batched exact scan")
      ->check(CLI::IsMember({"flat", "batched"}));
  app.add_option("--flat-queries", o.flat_queries,
                 "with --truth batched: flat indexes timed on this many queries (0: all)");
  app.add_option("--churn", o.churn, "templates added then removed, one call each")->capture_default_str();
  app.add_option("--churn-max-seconds", o.churn_max_seconds, "stop adding (removing) after this long")
      ->capture_default_str();
  app.add_option("--rerank", o.rerank_factor, "IndexOptions::rerank_factor")->capture_default_str();
  app.add_option("--threads", o.threads, "threads for building and the batched ground truth")->capture_default_str();
  app.add_option("--seed", o.seed, "distractor seed")->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed searches first")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  Bench bench(o);
  for (int i = 0; i < argc; ++i) bench.command_line_ += (i ? " " : "") + std::string(argv[i]);
  return bench.Run();
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) { return veriface::Main(argc, argv); }
