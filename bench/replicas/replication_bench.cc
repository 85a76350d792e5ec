// The gallery's stores measured at the gallery's own interface (synthetic 128-D embeddings, so that the
// model's cost does not hide the store's): enrolment throughput and latency on SQLite and on PostgreSQL
// with one and three replicas; how long a write on one replica takes to be readable on another, under a
// steady enrolment stream; and Identify on the same templates held over each store. PostgreSQL is a real
// server that this program starts on loopback (as the tests do), with fsync on.
//
// usage: replication_bench [--enrolments N] [--threads T] [--rate PER_SECOND] [--identify-templates N]
// prints one JSON object on stdout.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/gallery/gallery.h"
#include "core/gallery/gallery_follower.h"
#include "core/gallery/postgres_gallery_store.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/temp_dir.h"

namespace veriface::testing {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

nlohmann::json Summary(const std::vector<double>& ms) {
  return {{"n", ms.size()},
          {"p50_ms", Percentile(ms, 0.50)},
          {"p90_ms", Percentile(ms, 0.90)},
          {"p99_ms", Percentile(ms, 0.99)},
          {"max_ms", ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end())}};
}

[[noreturn]] void Die(const std::string& what, const absl::Status& status) {
  std::cerr << "replication_bench: " << what << ": " << status << "\n";
  std::exit(1);
}

std::unique_ptr<Gallery> OpenSqlite(const std::string& path) {
  auto store = SqliteGalleryStore::Open(path);
  if (!store.ok()) Die("sqlite", store.status());
  auto g = Gallery::Open(*std::move(store), kModel, kDim);
  if (!g.ok()) Die("sqlite gallery", g.status());
  return *std::move(g);
}

std::unique_ptr<Gallery> OpenPostgres(const PostgresServer& pg) {
  PostgresStoreOptions options;
  options.conninfo = pg.conninfo();
  options.password = pg.password();
  auto store = PostgresGalleryStore::Open(options);
  if (!store.ok()) Die("postgres", store.status());
  auto g = Gallery::Open(*std::move(store), kModel, kDim);
  if (!g.ok()) Die("postgres gallery", g.status());
  return *std::move(g);
}

// `enrolments` Enrolls of one template each, spread over `threads` client threads that take the
// replicas in turn; throughput over the whole run, latency per call.
nlohmann::json EnrolThroughput(const std::vector<Gallery*>& replicas, int enrolments, int threads,
                               const std::string& label) {
  std::atomic<int> next{0};
  std::mutex mutex;
  std::vector<double> latencies;
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      std::vector<double> mine;
      for (int i = next++; i < enrolments; i = next++) {
        Gallery* g = replicas[static_cast<size_t>(i) % replicas.size()];
        const Clock::time_point t0 = Clock::now();
        auto r = g->Enroll(EnrollCommand{
            "", absl::StrCat(label, "-", i), {{"n", "1"}}, {RandomUnit(rng)}, absl::StrCat(label, "-req-", i), {}});
        if (!r.ok()) Die("enrol", r.status());
        mine.push_back(Ms(Clock::now() - t0));
      }
      std::lock_guard<std::mutex> lock(mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  nlohmann::json out = Summary(latencies);
  out["replicas"] = replicas.size();
  out["client_threads"] = threads;
  out["enrolments_per_second"] = enrolments / seconds;
  return out;
}

// Followers record each change's lag (another replica's write to its application, on the database's clock).
class LagRecorder : public FollowObserver {
 public:
  void OnGallerySync(const SyncReport& report) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (double s : report.lag_seconds) lag_ms_.push_back(s * 1000);
  }
  std::vector<double> lag_ms() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lag_ms_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<double> lag_ms_;
};

// One replica enrols at `rate` a second; two others follow with the product's follower. Lag as a client
// sees it: from the writer's acknowledgement to the identity being readable on a follower (checked every
// 0.2 ms); and as the followers measure it.
nlohmann::json PropagationLag(const PostgresServer& pg, int enrolments, double rate) {
  auto writer = OpenPostgres(pg);
  auto b = OpenPostgres(pg);
  auto c = OpenPostgres(pg);
  auto recorder = std::make_shared<LagRecorder>();
  const FollowOptions follow;  // the product's defaults: notified at once, 1 s fallback poll
  GalleryFollower fb(b.get(), follow, recorder);
  GalleryFollower fc(c.get(), follow, recorder);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // both listening
  std::mt19937 rng(7);
  std::vector<double> visible_ms;
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  Clock::time_point due = Clock::now();
  for (int i = 0; i < enrolments; ++i) {
    std::this_thread::sleep_until(due);
    due += period;
    const std::string id = absl::StrCat("lag-", i);
    auto r = writer->Enroll(EnrollCommand{"", id, {}, {RandomUnit(rng)}, "", {}});
    if (!r.ok()) Die("enrol", r.status());
    const Clock::time_point acked = Clock::now();
    Gallery* follower = (i % 2 == 0) ? b.get() : c.get();
    while (!(*follower->Find(""))->Get(id).ok()) std::this_thread::sleep_for(std::chrono::microseconds(200));
    visible_ms.push_back(Ms(Clock::now() - acked));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  nlohmann::json out;
  out["enrolments"] = enrolments;
  out["rate_per_second"] = rate;
  out["client_visible"] = Summary(visible_ms);
  out["follower_metric"] = Summary(recorder->lag_ms());
  return out;
}

// Identify over the same templates in a gallery loaded from each store: the store must not change the
// in-memory search.
nlohmann::json IdentifyOverStores(const PostgresServer& pg, const std::string& sqlite_path, int templates) {
  auto lite = OpenSqlite(sqlite_path);
  auto shared = OpenPostgres(pg);
  std::mt19937 rng(99);
  constexpr int kPerEnrol = 50;
  for (Gallery* g : {lite.get(), shared.get()}) {
    if (auto made = g->CreateGallery("identify"); !made.ok()) Die("create gallery", made.status());
  }
  for (int i = 0; i < templates / kPerEnrol; ++i) {
    std::vector<std::vector<float>> e;
    for (int k = 0; k < kPerEnrol; ++k) e.push_back(RandomUnit(rng));
    for (Gallery* g : {lite.get(), shared.get()}) {
      auto r = g->Enroll(EnrollCommand{"identify", absl::StrCat("id-", i), {}, e, "", {}});
      if (!r.ok()) Die("enrol", r.status());
    }
  }
  // Reopen both, so that each holds what its store loads.
  lite.reset();
  shared.reset();
  lite = OpenSqlite(sqlite_path);
  shared = OpenPostgres(pg);
  std::vector<std::vector<float>> queries;
  for (int q = 0; q < 200; ++q) queries.push_back(RandomUnit(rng));
  nlohmann::json out;
  out["templates"] = templates;
  std::vector<double> medians;
  for (int round = 0; round < 3; ++round) {  // interleaved, so drift hits both alike
    for (auto [name, g] : {std::pair<const char*, Gallery*>{"sqlite", lite.get()}, {"postgres", shared.get()}}) {
      auto c = *g->Find("identify");
      std::vector<double> ms;
      for (const auto& q : queries) {
        const Clock::time_point t0 = Clock::now();
        auto m = c->Identify(q, 5, -2);
        if (!m.ok()) Die("identify", m.status());
        ms.push_back(Ms(Clock::now() - t0));
      }
      out[name]["round_" + std::to_string(round)] = Summary(ms);
    }
  }
  std::vector<double> ratios;
  for (int round = 0; round < 3; ++round) {
    const std::string r = "round_" + std::to_string(round);
    ratios.push_back(out["postgres"][r]["p50_ms"].get<double>() / out["sqlite"][r]["p50_ms"].get<double>());
  }
  out["p50_ratio_postgres_over_sqlite"] = Percentile(ratios, 0.5);
  return out;
}

int Main(int argc, char** argv) {
  int enrolments = 2000, threads = 4, lag_enrolments = 600, identify_templates = 100000;
  double rate = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--enrolments")
      enrolments = std::stoi(value);
    else if (flag == "--threads")
      threads = std::stoi(value);
    else if (flag == "--rate")
      rate = std::stod(value);
    else if (flag == "--lag-enrolments")
      lag_enrolments = std::stoi(value);
    else if (flag == "--identify-templates")
      identify_templates = std::stoi(value);
    else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  TempDir dir;
  nlohmann::json out;
  out["enrolment"]["sqlite_1_replica"] = [&] {
    auto g = OpenSqlite(dir.File("enrol.db"));
    return EnrolThroughput({g.get()}, enrolments, threads, "s1");
  }();
  {
    auto pg = PostgresServer::Start();
    if (!pg.ok()) Die("postgres server", pg.status());
    {
      auto a = OpenPostgres(**pg);
      out["enrolment"]["postgres_1_replica"] = EnrolThroughput({a.get()}, enrolments, threads, "p1");
    }
    {
      auto a = OpenPostgres(**pg), b = OpenPostgres(**pg), c = OpenPostgres(**pg);
      out["enrolment"]["postgres_3_replicas"] = EnrolThroughput({a.get(), b.get(), c.get()}, enrolments, threads, "p3");
    }
  }
  {
    auto pg = PostgresServer::Start();
    if (!pg.ok()) Die("postgres server", pg.status());
    out["propagation_lag"] = PropagationLag(**pg, lag_enrolments, rate);
    out["identify"] = IdentifyOverStores(**pg, dir.File("identify.db"), identify_templates);
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace veriface::testing

int main(int argc, char** argv) { return veriface::testing::Main(argc, argv); }
