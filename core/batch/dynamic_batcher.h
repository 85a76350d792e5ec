#pragma once
// A dynamic batcher in the manner of Triton's: requests from many threads queue up; a worker takes up
// to max_batch of them, waiting at most max_queue_delay after the oldest one arrived for the batch to
// fill, and runs one batch function call for all of them. The queue is bounded (a full queue answers
// RESOURCE_EXHAUSTED at once), and items whose deadline has passed or whose caller has gone are
// answered without being computed.
//
// Every future returned by Submit is eventually satisfied, whatever the batch function does (throws,
// returns the wrong number of results) and also across Shutdown.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/batch/batch_observer.h"

namespace veriface {

struct DynamicBatcherOptions {
  std::string name = "batcher";  // names the batcher in messages and to the observer
  int max_batch = 8;
  std::chrono::microseconds max_queue_delay{1000};  // 0: never wait for a batch to fill
  int64_t max_queue_size = 1024;
  int workers = 1;
};

// INVALID_ARGUMENT naming the first bad field.
absl::Status ValidateDynamicBatcherOptions(const DynamicBatcherOptions& options);

template <typename In, typename Out>
class DynamicBatcher {
 public:
  using Clock = std::chrono::steady_clock;
  using Result = absl::StatusOr<Out>;
  // Gets the batch's items (at most max_batch, at least one) and returns one result per item, in order.
  using BatchFn = std::function<std::vector<Result>(std::vector<In>&)>;

  static absl::StatusOr<std::unique_ptr<DynamicBatcher>> Create(DynamicBatcherOptions options, BatchFn fn,
                                                                std::shared_ptr<BatchObserver> observer = nullptr) {
    absl::Status valid = ValidateDynamicBatcherOptions(options);
    if (!valid.ok()) return valid;
    if (!fn) return absl::InvalidArgumentError(absl::StrCat("batcher '", options.name, "' has no batch function"));
    return std::unique_ptr<DynamicBatcher>(new DynamicBatcher(std::move(options), std::move(fn), std::move(observer)));
  }

  ~DynamicBatcher() { Shutdown(); }
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues `item`. The future holds the batch function's result for it, or: RESOURCE_EXHAUSTED (queue
  // full, at once), UNAVAILABLE (shut down, at once), DEADLINE_EXCEEDED (deadline passed before compute),
  // CANCELLED (is_cancelled() was true when a worker took it), INTERNAL (the batch function failed).
  // `is_cancelled` is called from a worker thread, without the batcher's lock held.
  std::future<Result> Submit(In item, Clock::time_point deadline, std::function<bool()> is_cancelled = {}) {
    const Clock::time_point now = Clock::now();
    if (deadline <= now) {
      Drop(DropReason::kDeadlineExceeded);
      return Ready(absl::DeadlineExceededError(
          absl::StrCat("deadline had already passed when the item reached batcher '", options_.name, "'")));
    }
    Pending pending{std::move(item), deadline, std::move(is_cancelled), now, {}};
    std::future<Result> future = pending.promise.get_future();
    int64_t depth = 0;
    absl::Status refused;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {
        refused = absl::UnavailableError(absl::StrCat("batcher '", options_.name, "' is shutting down"));
      } else if (static_cast<int64_t>(queue_.size()) >= options_.max_queue_size) {
        refused = absl::ResourceExhaustedError(
            absl::StrCat("batcher '", options_.name, "' queue is full (", options_.max_queue_size, " items waiting)"));
      } else {
        queue_.push_back(std::move(pending));
        depth = static_cast<int64_t>(queue_.size());
        // Wake a worker when there is something new to wait on, or when a waiting batch is full.
        if (depth == 1 || depth >= options_.max_batch) work_cv_.notify_one();
      }
    }
    if (!refused.ok()) {
      Drop(absl::IsUnavailable(refused) ? DropReason::kShutdown : DropReason::kQueueFull);
      return Ready(std::move(refused));
    }
    if (observer_) observer_->OnQueueDepth(options_.name, depth);
    return future;
  }

  // Stops accepting (later Submits answer UNAVAILABLE), runs what is queued without waiting for batches
  // to fill, and joins the workers. Idempotent; must not be called from the batch function.
  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    std::lock_guard<std::mutex> join_lock(join_mutex_);
    for (std::thread& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
  }

  int64_t queue_depth() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(queue_.size());
  }
  const DynamicBatcherOptions& options() const { return options_; }

 private:
  struct Pending {
    In item;
    Clock::time_point deadline;
    std::function<bool()> is_cancelled;
    Clock::time_point enqueued;
    std::promise<Result> promise;
  };

  DynamicBatcher(DynamicBatcherOptions options, BatchFn fn, std::shared_ptr<BatchObserver> observer)
      : options_(std::move(options)), fn_(std::move(fn)), observer_(std::move(observer)) {
    workers_.reserve(options_.workers);
    for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }

  static std::future<Result> Ready(absl::Status status) {
    std::promise<Result> promise;
    promise.set_value(std::move(status));
    return promise.get_future();
  }

  void Drop(DropReason reason) {
    if (observer_) observer_->OnDropped(options_.name, reason);
  }

  void WorkerLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has been taken
      // Let the batch fill, but never keep the oldest item waiting longer than max_queue_delay.
      while (!stopping_ && !queue_.empty() && static_cast<int64_t>(queue_.size()) < options_.max_batch) {
        const Clock::time_point fill_deadline = queue_.front().enqueued + options_.max_queue_delay;
        if (Clock::now() >= fill_deadline) break;
        work_cv_.wait_until(lock, fill_deadline);
      }
      if (queue_.empty()) continue;  // another worker took them while this one waited
      const size_t take = std::min<size_t>(queue_.size(), static_cast<size_t>(options_.max_batch));
      std::vector<Pending> batch;
      batch.reserve(take);
      for (size_t i = 0; i < take; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      const int64_t depth = static_cast<int64_t>(queue_.size());
      if (depth > 0) work_cv_.notify_one();  // another worker can start on the rest
      lock.unlock();
      if (observer_) observer_->OnQueueDepth(options_.name, depth);
      Process(batch);
      lock.lock();
    }
  }

  void Process(std::vector<Pending>& batch) {
    const Clock::time_point taken = Clock::now();
    std::vector<In> inputs;
    std::vector<std::promise<Result>> promises;
    inputs.reserve(batch.size());
    promises.reserve(batch.size());
    for (Pending& p : batch) {
      if (observer_) {
        observer_->OnQueueWait(options_.name,
                               std::chrono::duration_cast<std::chrono::microseconds>(taken - p.enqueued));
      }
      if (p.deadline <= taken) {
        Drop(DropReason::kDeadlineExceeded);
        p.promise.set_value(absl::DeadlineExceededError(absl::StrCat(
            "deadline passed after ", std::chrono::duration_cast<std::chrono::microseconds>(taken - p.enqueued).count(),
            " us in the queue of batcher '", options_.name, "'")));
        continue;
      }
      if (p.is_cancelled && IsCancelled(p.is_cancelled)) {
        Drop(DropReason::kCancelled);
        p.promise.set_value(
            absl::CancelledError(absl::StrCat("cancelled while queued in batcher '", options_.name, "'")));
        continue;
      }
      inputs.push_back(std::move(p.item));
      promises.push_back(std::move(p.promise));
    }
    if (inputs.empty()) return;

    const size_t n = inputs.size();
    std::vector<Result> results;
    absl::Status failure;
    const Clock::time_point start = Clock::now();
    try {
      results = fn_(inputs);
    } catch (const std::exception& e) {
      failure = absl::InternalError(absl::StrCat("batch function of '", options_.name, "' threw: ", e.what()));
    } catch (...) {
      failure = absl::InternalError(absl::StrCat("batch function of '", options_.name, "' threw a non-exception"));
    }
    const auto compute = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    if (failure.ok() && results.size() != n) {
      failure = absl::InternalError(absl::StrCat("batch function of '", options_.name, "' returned ", results.size(),
                                                 " results for ", n, " items"));
    }
    if (observer_) observer_->OnBatch(options_.name, static_cast<int64_t>(n), compute, failure.ok());
    for (size_t i = 0; i < n; ++i) {
      // Each caller gets a status of its own rather than a shared copy of `failure`: the callers'
      // threads then never share a status payload's reference count with this one.
      promises[i].set_value(failure.ok() ? std::move(results[i])
                                         : Result(absl::Status(failure.code(), failure.message())));
    }
  }

  static bool IsCancelled(const std::function<bool()>& is_cancelled) {
    try {
      return is_cancelled();
    } catch (...) {
      return true;  // a caller we cannot ask about is treated as gone
    }
  }

  const DynamicBatcherOptions options_;
  const BatchFn fn_;
  const std::shared_ptr<BatchObserver> observer_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::deque<Pending> queue_;  // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  std::mutex join_mutex_;      // one Shutdown joins at a time
  std::vector<std::thread> workers_;
};

}  // namespace veriface
