// The dynamic batcher's promises, each checked by behaviour: what reaches the batch function, in
// which groups, and what every caller gets back. Waiting is made deterministic with gates (a batch
// function that blocks until the test lets it go) and with max_queue_delay values so long that only
// a full batch or Shutdown can release a waiting batch.

#include "core/batch/dynamic_batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <stdexcept>
#include <thread>

namespace veriface {
namespace {

using ::testing::AnyOf;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using Batcher = DynamicBatcher<int, int>;

constexpr auto kForever = std::chrono::hours(1);
Clock::time_point Later() { return Clock::now() + kForever; }

// Records everything the batcher reports.
class RecordingObserver : public BatchObserver {
 public:
  void OnQueueDepth(const std::string&, int64_t depth) override {
    std::lock_guard<std::mutex> lock(mutex_);
    max_depth_ = std::max(max_depth_, depth);
  }
  void OnQueueWait(const std::string&, std::chrono::microseconds wait) override {
    std::lock_guard<std::mutex> lock(mutex_);
    waits_.push_back(wait);
  }
  void OnBatch(const std::string& name, int64_t size, std::chrono::microseconds, bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    EXPECT_EQ(name, "test");
    batch_sizes_.push_back(size);
    if (!ok) ++failed_batches_;
  }
  void OnDropped(const std::string&, DropReason reason) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++dropped_[reason];
  }
  std::vector<int64_t> batch_sizes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return batch_sizes_;
  }
  std::vector<std::chrono::microseconds> waits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return waits_;
  }
  int64_t dropped(DropReason reason) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = dropped_.find(reason);
    return it == dropped_.end() ? 0 : it->second;
  }
  int64_t max_depth() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return max_depth_;
  }
  int64_t failed_batches() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return failed_batches_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<int64_t> batch_sizes_;
  std::vector<std::chrono::microseconds> waits_;
  std::map<DropReason, int64_t> dropped_;
  int64_t max_depth_ = 0;
  int64_t failed_batches_ = 0;
};

// A batch function that doubles each item, records what it saw, and can be held closed.
class Doubler {
 public:
  Batcher::BatchFn Fn() {
    return [this](std::vector<int>& items) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ++entered_;
        entered_cv_.notify_all();
        open_cv_.wait(lock, [this] { return open_; });
        seen_.insert(seen_.end(), items.begin(), items.end());
      }
      std::vector<absl::StatusOr<int>> out;
      for (int x : items) out.push_back(2 * x);
      return out;
    };
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    open_cv_.notify_all();
  }
  void WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mutex_);
    entered_cv_.wait(lock, [&] { return entered_ >= n; });
  }
  std::vector<int> seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable open_cv_, entered_cv_;
  bool open_ = true;
  int entered_ = 0;
  std::vector<int> seen_;
};

DynamicBatcherOptions Options(int max_batch, std::chrono::microseconds delay, int64_t queue = 1024, int workers = 1) {
  DynamicBatcherOptions o;
  o.name = "test";
  o.max_batch = max_batch;
  o.max_queue_delay = delay;
  o.max_queue_size = queue;
  o.workers = workers;
  return o;
}

std::unique_ptr<Batcher> Make(DynamicBatcherOptions options, Batcher::BatchFn fn,
                              std::shared_ptr<BatchObserver> observer = nullptr) {
  auto batcher = Batcher::Create(std::move(options), std::move(fn), std::move(observer));
  EXPECT_TRUE(batcher.ok()) << batcher.status();
  return batcher.ok() ? std::move(*batcher) : nullptr;
}

bool IsReady(const std::future<absl::StatusOr<int>>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

TEST(DynamicBatcherTest, ConcurrentSubmissionsAreGroupedIntoFullBatches) {
  auto observer = std::make_shared<RecordingObserver>();
  Doubler doubler;
  // With an hour of max_queue_delay only a full batch is ever run before Shutdown.
  auto batcher = Make(Options(8, kForever), doubler.Fn(), observer);
  std::vector<std::future<absl::StatusOr<int>>> futures(32);
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] { futures[t] = batcher->Submit(t, Later()); });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 32; ++t) {
    auto result = futures[t].get();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*result, 2 * t);
  }
  EXPECT_THAT(observer->batch_sizes(), ElementsAre(8, 8, 8, 8));
}

TEST(DynamicBatcherTest, APartialBatchWaitsForMaxQueueDelayThenRuns) {
  auto observer = std::make_shared<RecordingObserver>();
  Doubler doubler;
  const auto delay = std::chrono::milliseconds(30);
  auto batcher = Make(Options(8, delay), doubler.Fn(), observer);
  auto a = batcher->Submit(1, Later());
  auto b = batcher->Submit(2, Later());
  // Nobody else comes: the worker must give up waiting for a full batch and run these two.
  EXPECT_EQ(a.get().value(), 2);
  EXPECT_EQ(b.get().value(), 4);
  EXPECT_THAT(observer->batch_sizes(), ElementsAre(2));
  // The oldest item waited for the batch to fill, for max_queue_delay and not much less.
  ASSERT_EQ(observer->waits().size(), 2u);
  EXPECT_GE(observer->waits()[0], std::chrono::duration_cast<std::chrono::microseconds>(delay));
}

TEST(DynamicBatcherTest, ZeroDelayRunsWhatIsThere) {
  Doubler doubler;
  auto batcher = Make(Options(8, std::chrono::microseconds(0)), doubler.Fn());
  EXPECT_EQ(batcher->Submit(21, Later()).get().value(), 42);
}

TEST(DynamicBatcherTest, AFullQueueAnswersResourceExhaustedAtOnceAndStaysBounded) {
  auto observer = std::make_shared<RecordingObserver>();
  Doubler doubler;
  doubler.Close();
  auto batcher = Make(Options(1, std::chrono::microseconds(0), /*queue=*/4), doubler.Fn(), observer);
  auto running = batcher->Submit(0, Later());
  doubler.WaitEntered(1);  // the worker holds item 0 inside the batch function; the queue is empty
  std::vector<std::future<absl::StatusOr<int>>> queued;
  for (int i = 1; i <= 4; ++i) queued.push_back(batcher->Submit(i, Later()));
  EXPECT_EQ(batcher->queue_depth(), 4);
  for (int i = 0; i < 10000; ++i) {
    auto refused = batcher->Submit(100 + i, Later());
    ASSERT_TRUE(IsReady(refused));  // answered at once, not queued
    auto status = refused.get().status();
    ASSERT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
    if (i == 0) {
      EXPECT_THAT(std::string(status.message()), HasSubstr("queue is full (4 items waiting)"));
    }
  }
  EXPECT_EQ(batcher->queue_depth(), 4);
  EXPECT_EQ(observer->max_depth(), 4);
  EXPECT_EQ(observer->dropped(DropReason::kQueueFull), 10000);
  doubler.Open();
  EXPECT_EQ(running.get().value(), 0);
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(queued[i - 1].get().value(), 2 * i);
  EXPECT_THAT(doubler.seen(), ElementsAre(0, 1, 2, 3, 4));
}

TEST(DynamicBatcherTest, ExpiredAndCancelledItemsNeverReachTheBatchFunction) {
  auto observer = std::make_shared<RecordingObserver>();
  Doubler doubler;
  doubler.Close();
  auto batcher = Make(Options(16, std::chrono::microseconds(0)), doubler.Fn(), observer);
  auto blocker = batcher->Submit(0, Later());
  doubler.WaitEntered(1);

  const auto soon = Clock::now() + std::chrono::milliseconds(20);
  auto expiring = batcher->Submit(1, soon);
  std::atomic<bool> gone{false};
  auto cancelled = batcher->Submit(2, Later(), [&] { return gone.load(); });
  auto throwing_check = batcher->Submit(3, Later(), []() -> bool { throw std::runtime_error("no context"); });
  auto live = batcher->Submit(4, Later(), [] { return false; });
  auto already_expired = batcher->Submit(5, Clock::now() - std::chrono::seconds(1));
  ASSERT_TRUE(IsReady(already_expired));
  EXPECT_EQ(already_expired.get().status().code(), absl::StatusCode::kDeadlineExceeded);

  std::this_thread::sleep_until(soon + std::chrono::milliseconds(5));
  gone = true;
  doubler.Open();
  EXPECT_EQ(blocker.get().value(), 0);
  auto e = expiring.get();
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("in the queue of batcher 'test'"));
  EXPECT_EQ(cancelled.get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(throwing_check.get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(live.get().value(), 8);
  EXPECT_THAT(doubler.seen(), ElementsAre(0, 4));
  EXPECT_EQ(observer->dropped(DropReason::kDeadlineExceeded), 2);
  EXPECT_EQ(observer->dropped(DropReason::kCancelled), 2);
}

TEST(DynamicBatcherTest, ABatchFunctionThatThrowsFailsOnlyItsBatch) {
  auto observer = std::make_shared<RecordingObserver>();
  auto fn = [](std::vector<int>& items) -> std::vector<absl::StatusOr<int>> {
    if (items[0] < 0) throw std::runtime_error("boom " + std::to_string(items[0]));
    if (items[0] == 1000) throw 7;                          // not even a std::exception
    if (items[0] == 2000) return {absl::StatusOr<int>(1)};  // wrong number of results
    std::vector<absl::StatusOr<int>> out;
    for (int x : items) out.push_back(x == 13 ? absl::StatusOr<int>(absl::InvalidArgumentError("13")) : x);
    return out;
  };
  auto batcher = Make(Options(3, kForever), fn, observer);
  auto submit3 = [&](int a, int b, int c) {
    std::vector<std::future<absl::StatusOr<int>>> f;
    f.push_back(batcher->Submit(a, Later()));
    f.push_back(batcher->Submit(b, Later()));
    f.push_back(batcher->Submit(c, Later()));
    std::vector<absl::StatusOr<int>> r;
    for (auto& x : f) r.push_back(x.get());
    return r;
  };
  for (const auto& r : submit3(-5, 1, 2)) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("threw: boom -5"));
  }
  for (const auto& r : submit3(1000, 1, 2)) EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  for (const auto& r : submit3(2000, 1, 2)) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("returned 1 results for 3 items"));
  }
  // The batcher is still working, and per-item errors stay per item.
  auto fine = submit3(12, 13, 14);
  EXPECT_EQ(fine[0].value(), 12);
  EXPECT_EQ(fine[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fine[2].value(), 14);
  EXPECT_EQ(observer->failed_batches(), 3);
}

TEST(DynamicBatcherTest, ShutdownDrainsTheQueueAndRefusesNewWork) {
  auto observer = std::make_shared<RecordingObserver>();
  Doubler doubler;
  auto batcher = Make(Options(100, kForever, 1024, 2), doubler.Fn(), observer);
  std::vector<std::future<absl::StatusOr<int>>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(batcher->Submit(i, Later()));
  batcher->Shutdown();  // the partial batch runs now rather than after an hour
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(IsReady(futures[i]));
    EXPECT_EQ(futures[i].get().value(), 2 * i);
  }
  auto late = batcher->Submit(1, Later());
  ASSERT_TRUE(IsReady(late));
  EXPECT_EQ(late.get().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(observer->dropped(DropReason::kShutdown), 1);
  batcher->Shutdown();  // idempotent
}

TEST(DynamicBatcherTest, DestructionAnswersEveryQueuedItem) {
  Doubler doubler;
  std::vector<std::future<absl::StatusOr<int>>> futures;
  {
    auto batcher = Make(Options(64, kForever), doubler.Fn());
    for (int i = 0; i < 5; ++i) futures.push_back(batcher->Submit(i, Later()));
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(futures[i].get().value(), 2 * i);
}

TEST(DynamicBatcherTest, BadOptionsAreRefused) {
  Doubler doubler;
  const std::vector<std::pair<DynamicBatcherOptions, std::string>> cases = {
      {Options(0, kForever), "max_batch 0 < 1"},
      {Options(1, std::chrono::microseconds(-1)), "max_queue_delay -1 us is negative"},
      {Options(1, kForever, 0), "max_queue_size 0 < 1"},
      {Options(1, kForever, 1, 0), "workers 0 is not in [1, 256]"},
  };
  for (const auto& [options, message] : cases) {
    auto batcher = Batcher::Create(options, doubler.Fn());
    EXPECT_EQ(batcher.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(batcher.status().message()), HasSubstr(message));
  }
  EXPECT_EQ(Batcher::Create(Options(1, kForever), nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DynamicBatcherTest, ManyThreadsHammeringGetEveryAnswerOnce) {
  auto observer = std::make_shared<RecordingObserver>();
  std::atomic<int64_t> computed{0};
  auto fn = [&](std::vector<int>& items) {
    EXPECT_LE(items.size(), 16u);
    computed += static_cast<int64_t>(items.size());
    std::vector<absl::StatusOr<int>> out;
    for (int x : items) out.push_back(x + 1);
    return out;
  };
  auto batcher = Make(Options(16, std::chrono::microseconds(200), 64, 3), fn, observer);
  constexpr int kThreads = 8, kPerThread = 1500;
  std::atomic<int64_t> ok{0}, full{0}, expired{0}, cancelled{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::pair<int, std::future<absl::StatusOr<int>>>> mine;
      const auto collect = [&] {
        for (auto& [v, f] : mine) {
          const auto r = f.get();
          if (r.ok()) {
            ++(*r == v + 1 ? ok : bad);
          } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
            ++full;
          } else if (r.status().code() == absl::StatusCode::kDeadlineExceeded) {
            ++expired;
          } else if (r.status().code() == absl::StatusCode::kCancelled) {
            ++cancelled;
          } else {
            ++bad;
          }
        }
        mine.clear();
      };
      for (int i = 0; i < kPerThread; ++i) {
        const int value = t * kPerThread + i;
        const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
        const auto deadline = kind == 0 ? Clock::now() + std::chrono::microseconds(50) : Later();
        std::function<bool()> is_cancelled;
        if (kind == 1) is_cancelled = [] { return true; };
        mine.emplace_back(value, batcher->Submit(value, deadline, is_cancelled));
        if (i % 64 == 63) collect();
      }
      collect();
    });
  }
  for (auto& th : threads) th.join();
  batcher->Shutdown();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ok + full + expired + cancelled, kThreads * kPerThread);
  EXPECT_EQ(computed.load(), ok.load());
  EXPECT_GT(cancelled.load(), 0);
  EXPECT_EQ(observer->dropped(DropReason::kQueueFull), full.load());
  EXPECT_EQ(observer->dropped(DropReason::kCancelled), cancelled.load());
  EXPECT_EQ(observer->dropped(DropReason::kDeadlineExceeded), expired.load());
  EXPECT_LE(observer->max_depth(), 64);
  int64_t in_batches = 0;
  for (int64_t s : observer->batch_sizes()) in_batches += s;
  EXPECT_EQ(in_batches, ok.load());
}

}  // namespace
}  // namespace veriface
