#include "client/load.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace veriface::client {
namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  int rpc = 0;  // index into the mix's names
  double ms = 0;
  grpc::StatusCode code = grpc::StatusCode::OK;
};

// The RPCs a mix may name.
constexpr std::array<absl::string_view, 4> kRpcs = {"verify", "identify", "embed", "enroll"};

grpc::Status Call(v1::Veriface::Stub& stub, const ConnectionOptions& connection, const LoadOptions& options,
                  const std::string& run_token, const std::string& rpc, const std::vector<std::string>& images,
                  int64_t i) {
  grpc::ClientContext context;
  PrepareContext(connection, context);
  const std::string& image = images[static_cast<size_t>(i) % images.size()];
  if (rpc == "verify") {
    v1::VerifyRequest request;
    request.mutable_a()->set_image(image);
    request.mutable_b()->set_image(images[static_cast<size_t>(i + 1) % images.size()]);
    v1::VerifyResponse response;
    return stub.Verify(&context, request, &response);
  }
  if (rpc == "identify") {
    v1::IdentifyRequest request;
    request.set_image(image);
    request.set_gallery(options.gallery);
    v1::IdentifyResponse response;
    return stub.Identify(&context, request, &response);
  }
  if (rpc == "enroll") {
    // A new identity per call, so that the gallery grows as it would under real enrolment; any face
    // quality is accepted, since the load measures capacity, not the photos.
    v1::EnrollRequest request;
    request.set_identity_id(absl::StrCat("load-", run_token, "-", i));
    request.set_request_id(request.identity_id());
    request.add_images(image);
    request.set_face_selection(v1::FACE_SELECTION_LARGEST);
    request.set_min_quality(v1::QUALITY_LEVEL_LOW);
    request.set_gallery(options.gallery);
    v1::EnrollResponse response;
    return stub.Enroll(&context, request, &response);
  }
  v1::EmbedRequest request;
  request.set_image(image);
  v1::EmbedResponse response;
  return stub.Embed(&context, request, &response);
}

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

std::string CodeName(grpc::StatusCode code) {
  const std::string described = Describe(grpc::Status(code, ""));
  return described;
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

absl::StatusOr<LoadReport> RunLoad(const ConnectionOptions& connection, const LoadOptions& options,
                                   const std::vector<std::string>& images) {
  if (images.empty()) return absl::InvalidArgumentError("no images to send");
  if (options.concurrency < 1) return absl::InvalidArgumentError("concurrency must be at least 1");
  if (options.count <= 0 && options.duration_seconds <= 0) {
    return absl::InvalidArgumentError("give a count or a duration");
  }
  // The mix as a repeating schedule: call i runs schedule[i % size].
  std::vector<std::string> names;
  std::vector<int> schedule;
  for (const auto& [name, weight] : options.mix) {
    for (int w = 0; w < weight; ++w) schedule.push_back(static_cast<int>(names.size()));
    names.push_back(name);
  }
  auto channel = MakeChannel(connection);
  // Distinguishes this run's enrolled identities (and their request ids) from an earlier run's.
  const std::string run_token = absl::StrCat(absl::Hex(std::chrono::system_clock::now().time_since_epoch().count()));

  for (int64_t i = 0; i < options.warmup; ++i) {
    auto stub = v1::Veriface::NewStub(channel);
    Call(*stub, connection, options, run_token,
         names[static_cast<size_t>(schedule[static_cast<size_t>(i) % schedule.size()])], images, i);
  }

  std::atomic<int64_t> next{0};
  std::mutex mutex;
  std::vector<Sample> samples;
  std::map<std::string, std::string> examples;
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_at = options.count > 0
                                        ? Clock::time_point::max()
                                        : start + std::chrono::duration_cast<Clock::duration>(
                                                      std::chrono::duration<double>(options.duration_seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < options.concurrency; ++t) {
    threads.emplace_back([&] {
      auto stub = v1::Veriface::NewStub(channel);
      std::vector<Sample> local;
      std::map<std::string, std::string> local_examples;
      while (true) {
        const int64_t i = next.fetch_add(1);
        if (options.count > 0 ? i >= options.count : Clock::now() >= stop_at) break;
        const int rpc = schedule[static_cast<size_t>(i) % schedule.size()];
        const Clock::time_point t0 = Clock::now();
        const grpc::Status status =
            Call(*stub, connection, options, run_token, names[static_cast<size_t>(rpc)], images, i);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        local.push_back(Sample{rpc, ms, status.error_code()});
        if (!status.ok()) local_examples.emplace(CodeName(status.error_code()), status.error_message());
      }
      std::lock_guard<std::mutex> lock(mutex);
      samples.insert(samples.end(), local.begin(), local.end());
      examples.insert(local_examples.begin(), local_examples.end());
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  LoadReport report;
  report.concurrency = options.concurrency;
  report.elapsed_seconds = elapsed;
  report.calls = static_cast<int64_t>(samples.size());
  std::vector<double> all;
  std::vector<std::vector<double>> per_rpc(names.size());
  for (const Sample& s : samples) {
    all.push_back(s.ms);
    per_rpc[static_cast<size_t>(s.rpc)].push_back(s.ms);
    if (s.code == grpc::StatusCode::OK) {
      ++report.ok;
    } else {
      ++report.errors[CodeName(s.code)];
    }
  }
  report.error_examples = std::move(examples);
  report.throughput = elapsed > 0 ? static_cast<double>(report.ok) / elapsed : 0;
  report.latency = Summarize(std::move(all));
  for (size_t r = 0; r < names.size(); ++r) report.by_rpc[names[r]] = Summarize(std::move(per_rpc[r]));
  return report;
}

}  // namespace veriface::client
