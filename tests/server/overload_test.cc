// Saturation: calls past limits.max_concurrent_calls are refused at once with a retry hint and the server
// stays up however many arrive; a full model-stage queue answers RESOURCE_EXHAUSTED at once, work whose
// deadline passed in the queue is dropped before compute, and memory stays bounded across bursts.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

// One call's end: its status and the retry-after-ms trailer it carried ("" without one).
struct Answer {
  grpc::Status status;
  std::string retry_after_ms;
};

// Sends `calls` Verify calls at once, each comparing two large group photos.
std::vector<Answer> Burst(ServerProcess& server, int calls, double deadline_seconds) {
  const std::string a = ReadBytes(GroupPhotosDir() + "/sample1.jpg");
  const std::string b = ReadBytes(GroupPhotosDir() + "/sample6.jpg");
  std::vector<Answer> results(static_cast<size_t>(calls));
  std::vector<std::thread> threads;
  for (int i = 0; i < calls; ++i) {
    threads.emplace_back([&, i] {
      v1::VerifyRequest request;
      request.mutable_a()->set_image(a);
      request.mutable_b()->set_image(b);
      v1::VerifyResponse response;
      const auto context = Context(deadline_seconds);
      Answer& answer = results[static_cast<size_t>(i)];
      answer.status = server.stub()->Verify(context.get(), request, &response);
      const auto& trailers = context->GetServerTrailingMetadata();
      if (const auto hint = trailers.find("retry-after-ms"); hint != trailers.end()) {
        answer.retry_after_ms.assign(hint->second.data(), hint->second.size());
      }
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

// One detection worker, one image per batch, room for `queue` waiting. The calls in progress are not
// bounded, so that the queue's own refusals are what these tests see.
absl::StatusOr<std::unique_ptr<ServerProcess>> StartWithDetectQueue(const TempDir& dir, int queue) {
  return ServerProcess::Start(
      dir.File("gallery.db"),
      {"--set", "inference.detect.max_queue_size=" + std::to_string(queue), "--set", "inference.detect.max_batch=1",
       "--set", "inference.detect.workers=1", "--set", "limits.max_concurrent_calls=0"});
}

std::map<grpc::StatusCode, int> Count(const std::vector<Answer>& results) {
  std::map<grpc::StatusCode, int> n;
  for (const auto& r : results) ++n[r.status.error_code()];
  return n;
}

// gRPC's own thread quota (server.max_threads, now refused) aborted the server when a burst exhausted it
// (ref_counted.h "prior > 0"); the slots refuse instead, in microseconds, and say when to come back.
TEST(OverloadTest, CallsPastTheLimitAreRefusedAtOnceWithARetryHint) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.File("gallery.db"), {"--set", "limits.max_concurrent_calls=2"});
  ASSERT_TRUE(server.ok()) << server.status().message();
  ServerProcess& s = **server;
  for (int round = 0; round < 2; ++round) {
    const auto results = Burst(s, 64, 120);
    auto counts = Count(results);
    EXPECT_GE(counts[grpc::StatusCode::OK], 2) << "round " << round;
    EXPECT_GE(counts[grpc::StatusCode::RESOURCE_EXHAUSTED], 32) << "round " << round;
    EXPECT_EQ(counts[grpc::StatusCode::OK] + counts[grpc::StatusCode::RESOURCE_EXHAUSTED], 64) << "round " << round;
    for (const auto& r : results) {
      if (r.status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) continue;
      EXPECT_THAT(r.status.error_message(), HasSubstr("limit of 2 calls at once (limits.max_concurrent_calls)"));
      ASSERT_FALSE(r.retry_after_ms.empty()) << "a refusal carries its retry-after-ms trailer";
      EXPECT_GE(std::stoi(r.retry_after_ms), 5);
    }
    EXPECT_EQ(s.Health(), "SERVING");
  }
  auto metrics = HttpGet(s.metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  ASSERT_THAT(*metrics, HasSubstr("veriface_calls_in_progress "));
  EXPECT_EQ(MetricValue(*metrics, "veriface_calls_in_progress", {}), 0);
  EXPECT_EQ(s.Stop(), 0);
}

// The load generator's closed loop waits out each refusal's hint; told to ignore it, it comes straight back.
TEST(OverloadTest, TheLoadGeneratorWaitsOutRetryHints) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.File("gallery.db"), {"--set", "limits.max_concurrent_calls=1"});
  ASSERT_TRUE(server.ok()) << server.status().message();
  ServerProcess& s = **server;
  for (const bool ignore : {false, true}) {
    SCOPED_TRACE(ignore ? "ignoring hints" : "honouring hints");
    std::vector<std::string> args = {
        ClientBinary(), "--server", s.address(), "--json", "load", LfwDir() + "/Colin_Powell",
        "--max-images", "4",        "--mix",     "embed",  "-c",   "6",
        "-n",           "36"};
    if (ignore) args.push_back("--ignore-retry-after");
    const CommandResult r = RunCommand(args);
    // 1: some calls were refused, which the run reports.
    ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.exit_code << ": " << r.err;
    const auto report = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(report.is_object()) << r.out;
    const int64_t refused = report["errors"].value("RESOURCE_EXHAUSTED", int64_t{0});
    EXPECT_GT(report["ok"].get<int64_t>(), 0) << report.dump();
    EXPECT_EQ(report["ok"].get<int64_t>() + refused, 36) << report.dump();
    if (ignore) {
      EXPECT_EQ(report["retry_waits"], 0) << report.dump();
    } else {
      EXPECT_GT(refused, 0) << "six senders on one slot: " << report.dump();
      EXPECT_EQ(report["retry_waits"], refused) << report.dump();
    }
  }
  EXPECT_EQ(s.Stop(), 0);
}

TEST(OverloadTest, AFullQueueIsResourceExhaustedAtOnceAndMemoryStaysBounded) {
  TempDir dir;
  auto server = StartWithDetectQueue(dir, 2);
  ASSERT_TRUE(server.ok()) << server.status().message();
  ServerProcess& s = **server;

  std::vector<int64_t> rss;
  int refused = 0;
  for (int round = 0; round < 6; ++round) {
    const auto results = Burst(s, 16, 120);
    auto counts = Count(results);
    refused += counts[grpc::StatusCode::RESOURCE_EXHAUSTED];
    EXPECT_GE(counts[grpc::StatusCode::OK], 1) << "round " << round;
    EXPECT_GE(counts[grpc::StatusCode::RESOURCE_EXHAUSTED], 1) << "round " << round;
    EXPECT_EQ(counts[grpc::StatusCode::OK] + counts[grpc::StatusCode::RESOURCE_EXHAUSTED], 16) << "round " << round;
    for (const auto& r : results) {
      if (r.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        EXPECT_THAT(r.status.error_message(), HasSubstr("queue is full"));
      }
    }
    EXPECT_EQ(s.Health(), "SERVING");
    rss.push_back(s.RssKib());
  }
  // Refused calls hold nothing: after the first rounds have warmed the allocator and the model's
  // caches, memory levels off instead of growing with every refused call.
  EXPECT_LT(rss.back(), rss[1] + 512 * 1024) << "RSS (KiB) by round: " << rss[0] << " " << rss[1] << " " << rss[2]
                                             << " " << rss[3] << " " << rss[4] << " " << rss[5];

  auto metrics = HttpGet(s.metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  // Every refused call counts as a queue_full drop, whether the early check before decoding refused it
  // or the batcher did (one per refused image there).
  EXPECT_GE(MetricValue(*metrics, "veriface_batch_dropped_total", {{"stage", "detect"}, {"reason", "queue_full"}}),
            refused);
  EXPECT_GT(
      MetricValue(*metrics, "veriface_rpc_requests_total", {{"method", "Verify"}, {"code", "RESOURCE_EXHAUSTED"}}), 0);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(OverloadTest, CallsWhoseDeadlinePassesInTheQueueAreNotComputed) {
  TempDir dir;
  auto server = StartWithDetectQueue(dir, 64);
  ASSERT_TRUE(server.ok()) << server.status().message();
  ServerProcess& s = **server;
  // 12 calls x 2 large photos, one at a time, cannot all be detected within a second.
  const auto results = Burst(s, 12, 1.0);
  auto counts = Count(results);
  EXPECT_GE(counts[grpc::StatusCode::DEADLINE_EXCEEDED], 1);
  EXPECT_EQ(counts[grpc::StatusCode::OK] + counts[grpc::StatusCode::DEADLINE_EXCEEDED], 12);

  // Wait for the queue to empty, then check that the expired items were dropped, not computed.
  double depth = 1;
  for (int i = 0; i < 600 && depth > 0; ++i) {
    auto m = HttpGet(s.metrics_port(), "/metrics");
    ASSERT_TRUE(m.ok());
    depth = MetricValue(*m, "veriface_batch_queue_depth", {{"stage", "detect"}});
    if (depth > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto metrics = HttpGet(s.metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  const double dropped =
      MetricValue(*metrics, "veriface_batch_dropped_total", {{"stage", "detect"}, {"reason", "deadline_exceeded"}}) +
      MetricValue(*metrics, "veriface_batch_dropped_total", {{"stage", "detect"}, {"reason", "cancelled"}});
  const double computed = MetricValue(*metrics, "veriface_batch_size_sum", {{"stage", "detect"}});
  EXPECT_GT(dropped, 0);
  EXPECT_LT(computed, 24);  // fewer images detected than were submitted
  EXPECT_EQ(s.Health(), "SERVING");
  EXPECT_EQ(s.Stop(), 0);
}

}  // namespace
}  // namespace veriface::testing
