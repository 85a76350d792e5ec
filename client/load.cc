#include "client/load.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/retry.h"

namespace veriface::client {
namespace {

using Clock = std::chrono::steady_clock;

// The RPCs a mix may name, in the order reports list them.
constexpr std::array<absl::string_view, 6> kRpcs = {"verify", "identify", "embed", "enroll", "delete", "list"};

int RpcIndex(absl::string_view name) {
  return static_cast<int>(std::find(kRpcs.begin(), kRpcs.end(), name) - kRpcs.begin());
}

struct Sample {
  int rpc = 0;  // index into kRpcs: the RPC actually made
  double ms = 0;
  grpc::StatusCode code = grpc::StatusCode::OK;
};

// What the calls of one run share: a token that keeps this run's identities (and request ids) apart from
// an earlier run's, and the identities enrolled and not yet taken by a delete, oldest first.
class RunState {
 public:
  RunState() : token_(absl::StrCat(absl::Hex(std::chrono::system_clock::now().time_since_epoch().count()))) {}

  std::string Identity(int64_t i) const { return absl::StrCat("load-", token_, "-", i); }
  void Enrolled(std::string identity) {
    std::lock_guard<std::mutex> lock(mutex_);
    enrolled_.push_back(std::move(identity));
  }
  std::optional<std::string> TakeOldest() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (enrolled_.empty()) return std::nullopt;
    std::string identity = std::move(enrolled_.front());
    enrolled_.pop_front();
    return identity;
  }

 private:
  const std::string token_;
  std::mutex mutex_;
  std::deque<std::string> enrolled_;
};

// Sends call `i` as RPC `rpc` (an index into kRpcs) on `context`. A delete with nothing left to delete
// lists instead, and changes `rpc` to say so.
grpc::Status Send(v1::Veriface::Stub& stub, const LoadOptions& options, RunState& state, int& rpc,
                  const std::vector<std::string>& images, int64_t i, grpc::ClientContext& context) {
  const std::string& image = images[static_cast<size_t>(i) % images.size()];
  absl::string_view name = kRpcs[static_cast<size_t>(rpc)];
  if (name == "verify") {
    v1::VerifyRequest request;
    request.mutable_a()->set_image(image);
    request.mutable_b()->set_image(images[static_cast<size_t>(i + 1) % images.size()]);
    v1::VerifyResponse response;
    return stub.Verify(&context, request, &response);
  }
  if (name == "identify") {
    v1::IdentifyRequest request;
    request.set_image(image);
    request.set_gallery(options.gallery);
    v1::IdentifyResponse response;
    return stub.Identify(&context, request, &response);
  }
  if (name == "enroll") {
    // A new identity per call, so that the gallery grows as it would under real enrolment; any face
    // quality is accepted, since the load measures capacity, not the photos.
    v1::EnrollRequest request;
    request.set_identity_id(state.Identity(i));
    request.set_request_id(request.identity_id());
    request.add_images(image);
    request.set_face_selection(v1::FACE_SELECTION_LARGEST);
    request.set_min_quality(v1::QUALITY_LEVEL_LOW);
    request.set_gallery(options.gallery);
    v1::EnrollResponse response;
    grpc::Status status = stub.Enroll(&context, request, &response);
    if (status.ok()) state.Enrolled(request.identity_id());
    return status;
  }
  if (name == "delete") {
    if (std::optional<std::string> identity = state.TakeOldest()) {
      v1::DeleteIdentityRequest request;
      request.set_identity_id(*std::move(identity));
      request.set_request_id(absl::StrCat("delete-", request.identity_id()));
      request.set_gallery(options.gallery);
      v1::DeleteIdentityResponse response;
      return stub.DeleteIdentity(&context, request, &response);
    }
    rpc = RpcIndex("list");
    name = "list";
  }
  if (name == "list") {
    v1::ListIdentitiesRequest request;
    request.set_page_size(100);
    request.set_gallery(options.gallery);
    v1::ListIdentitiesResponse response;
    return stub.ListIdentities(&context, request, &response);
  }
  v1::EmbedRequest request;
  request.set_image(image);
  v1::EmbedResponse response;
  return stub.Embed(&context, request, &response);
}

struct Outcome {
  int rpc = 0;  // the RPC made (see Send)
  grpc::Status status;
  std::optional<std::chrono::milliseconds> retry_after;  // a refusal's hint
};

// Makes call `i` as RPC `rpc`, with the run's deadline.
Outcome Call(v1::Veriface::Stub& stub, const ConnectionOptions& connection, const LoadOptions& options, RunState& state,
             int rpc, const std::vector<std::string>& images, int64_t i) {
  grpc::ClientContext context;
  PrepareContext(connection, context);
  if (options.deadline_seconds > 0) {
    context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(options.deadline_seconds)));
  }
  Outcome outcome;
  outcome.rpc = rpc;
  outcome.status = Send(stub, options, state, outcome.rpc, images, i, context);
  if (outcome.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) outcome.retry_after = RetryAfter(context);
  return outcome;
}

// Samples from every sender thread.
class Recorder {
 public:
  void Record(int rpc, Clock::time_point since, const grpc::Status& status) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - since).count();
    std::lock_guard<std::mutex> lock(mutex_);
    samples_.push_back(Sample{rpc, ms, status.error_code()});
    if (!status.ok()) examples_.emplace(Describe(grpc::Status(status.error_code(), "")), status.error_message());
  }
  std::vector<Sample> TakeSamples() { return std::move(samples_); }
  std::map<std::string, std::string> TakeExamples() { return std::move(examples_); }

 private:
  std::mutex mutex_;
  std::vector<Sample> samples_;
  std::map<std::string, std::string> examples_;
};

LatencySummary Summarize(std::vector<double> ms) {
  LatencySummary s;
  s.calls = static_cast<int64_t>(ms.size());
  if (ms.empty()) return s;
  s.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  s.p50_ms = Percentile(ms, 50);
  s.p90_ms = Percentile(ms, 90);
  s.p99_ms = Percentile(ms, 99);
  s.max_ms = ms.back();
  return s;
}

}  // namespace

absl::StatusOr<std::map<std::string, int>> ParseMix(const std::string& text) {
  std::map<std::string, int> mix;
  for (const absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    const std::vector<std::string> kv = absl::StrSplit(part, '=');
    const std::string name(kv[0]);
    if (std::find(kRpcs.begin(), kRpcs.end(), name) == kRpcs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown RPC '", name, "' in the mix (", absl::StrJoin(kRpcs, ", "), ")"));
    }
    int weight = 1;
    if (kv.size() > 2 || (kv.size() == 2 && (!absl::SimpleAtoi(kv[1], &weight) || weight < 0))) {
      return absl::InvalidArgumentError(absl::StrCat("bad mix entry '", std::string(part), "'; expected NAME=WEIGHT"));
    }
    if (weight > 0) mix[name] += weight;
  }
  if (mix.empty()) return absl::InvalidArgumentError(absl::StrCat("the mix '", text, "' names no RPC"));
  return mix;
}

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

namespace {

// Arrivals of an open-loop run: each is handed to an idle sender, or skipped when none is idle.
class Arrivals {
 public:
  struct Arrival {
    int64_t i;
    Clock::time_point at;
  };
  explicit Arrivals(int senders) : idle_(senders) {}

  // False when every sender is busy (the arrival is not sent).
  bool Offer(Arrival arrival) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_ == 0) return false;
    --idle_;
    queue_.push_back(arrival);
    ready_.notify_one();
    return true;
  }
  // The next arrival for a sender; none once Close has been called and the queue is empty.
  std::optional<Arrival> Next() {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return closed_ || !queue_.empty(); });
    if (queue_.empty()) return std::nullopt;
    const Arrival a = queue_.front();
    queue_.pop_front();
    return a;
  }
  void Done() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++idle_;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    ready_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Arrival> queue_;
  int idle_;
  bool closed_ = false;
};

}  // namespace

absl::StatusOr<LoadReport> RunLoad(const ConnectionOptions& connection, const LoadOptions& options,
                                   const std::vector<std::string>& images) {
  if (images.empty()) return absl::InvalidArgumentError("no images to send");
  if (options.concurrency < 1) return absl::InvalidArgumentError("concurrency must be at least 1");
  if (options.count <= 0 && options.duration_seconds <= 0) {
    return absl::InvalidArgumentError("give a count or a duration");
  }
  if (options.rate < 0 || options.deadline_seconds < 0) {
    return absl::InvalidArgumentError("the rate and the deadline cannot be negative");
  }
  // The mix as a repeating schedule: call i runs schedule[i % size].
  std::vector<int> schedule;
  for (const auto& [name, weight] : options.mix) {
    for (int w = 0; w < weight; ++w) schedule.push_back(RpcIndex(name));
  }
  const auto rpc_of = [&schedule](int64_t i) { return schedule[static_cast<size_t>(i) % schedule.size()]; };
  auto channel = MakeChannel(connection);
  RunState state;

  for (int64_t i = 0; i < options.warmup; ++i) {
    auto stub = v1::Veriface::NewStub(channel);
    Call(*stub, connection, options, state, rpc_of(i), images, i);
  }

  Recorder recorder;
  std::atomic<int64_t> skipped{0};
  std::atomic<int64_t> retry_waits{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_at = options.count > 0
                                        ? Clock::time_point::max()
                                        : start + std::chrono::duration_cast<Clock::duration>(
                                                      std::chrono::duration<double>(options.duration_seconds));
  const auto finished = [&](int64_t i) { return options.count > 0 ? i >= options.count : Clock::now() >= stop_at; };
  std::vector<std::thread> threads;
  if (options.rate <= 0) {
    std::atomic<int64_t> next{0};
    for (int t = 0; t < options.concurrency; ++t) {
      threads.emplace_back([&, t] {
        auto stub = v1::Veriface::NewStub(channel);
        // Each wait is the hint times a factor drawn from [0.5, 1.5), as clients jitter their back-off:
        // senders refused together would otherwise all come back together.
        std::mt19937_64 random(static_cast<uint64_t>(t));
        std::uniform_real_distribution<double> jitter(0.5, 1.5);
        for (int64_t i = next.fetch_add(1); !finished(i); i = next.fetch_add(1)) {
          const Clock::time_point t0 = Clock::now();
          const Outcome outcome = Call(*stub, connection, options, state, rpc_of(i), images, i);
          recorder.Record(outcome.rpc, t0, outcome.status);
          if (outcome.retry_after.has_value() && !options.ignore_retry_after) {
            ++retry_waits;
            const auto wait = std::chrono::duration_cast<Clock::duration>(*outcome.retry_after * jitter(random));
            std::this_thread::sleep_for(std::min<Clock::duration>(wait, stop_at - Clock::now()));
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
  } else {
    Arrivals arrivals(options.concurrency);
    for (int t = 0; t < options.concurrency; ++t) {
      threads.emplace_back([&] {
        auto stub = v1::Veriface::NewStub(channel);
        while (const std::optional<Arrivals::Arrival> a = arrivals.Next()) {
          const Outcome outcome = Call(*stub, connection, options, state, rpc_of(a->i), images, a->i);
          recorder.Record(outcome.rpc, a->at, outcome.status);
          arrivals.Done();
        }
      });
    }
    // Seeded, so that two runs at one rate offer the same arrivals.
    std::mt19937_64 random(42);
    std::exponential_distribution<double> gap(options.rate);
    Clock::time_point at = start;
    for (int64_t i = 0;; ++i) {
      at += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(random)));
      std::this_thread::sleep_until(at);
      if (finished(i)) break;
      if (!arrivals.Offer({i, at})) ++skipped;
    }
    arrivals.Close();
    for (std::thread& t : threads) t.join();
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  LoadReport report;
  report.concurrency = options.concurrency;
  report.offered_rate = options.rate;
  report.skipped = skipped;
  report.retry_waits = retry_waits;
  report.elapsed_seconds = elapsed;
  const std::vector<Sample> samples = recorder.TakeSamples();
  report.calls = static_cast<int64_t>(samples.size());
  std::vector<double> all;
  std::vector<std::vector<double>> per_rpc(kRpcs.size());
  for (const Sample& s : samples) {
    all.push_back(s.ms);
    per_rpc[static_cast<size_t>(s.rpc)].push_back(s.ms);
    if (s.code == grpc::StatusCode::OK) {
      ++report.ok;
    } else {
      ++report.errors[Describe(grpc::Status(s.code, ""))];
    }
  }
  report.error_examples = recorder.TakeExamples();
  report.throughput = elapsed > 0 ? static_cast<double>(report.ok) / elapsed : 0;
  report.latency = Summarize(std::move(all));
  for (size_t r = 0; r < kRpcs.size(); ++r) {
    if (!per_rpc[r].empty()) report.by_rpc[std::string(kRpcs[r])] = Summarize(std::move(per_rpc[r]));
  }
  return report;
}

}  // namespace veriface::client
