#include "core/gallery/gallery_follower.h"

#include <algorithm>
#include <utility>

namespace veriface {

GalleryFollower::GalleryFollower(Gallery* gallery, FollowOptions options, std::shared_ptr<FollowObserver> observer)
    : gallery_(gallery),
      options_(options),
      observer_(std::move(observer)),
      last_sync_(std::chrono::steady_clock::now()),
      thread_([this] { Run(); }) {}

GalleryFollower::~GalleryFollower() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

GalleryFreshness GalleryFollower::FreshnessLocked() const {
  GalleryFreshness f;
  f.store = gallery_->store_kind();
  f.shared = true;
  f.store_up = up_;
  f.seconds_since_sync = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_sync_).count();
  f.may_be_stale = !up_ || f.seconds_since_sync * 1000 > static_cast<double>(options_.stale_after.count());
  f.last_error = last_error_;
  return f;
}

GalleryFreshness GalleryFollower::freshness() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return FreshnessLocked();
}

void GalleryFollower::Run() {
  std::chrono::milliseconds backoff = std::min(std::chrono::milliseconds(100), options_.max_backoff);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    absl::StatusOr<SyncReport> report = gallery_->Sync();
    GalleryFreshness freshness;
    bool changed_state = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (report.ok()) {
        last_sync_ = std::chrono::steady_clock::now();
        changed_state = !up_;
        up_ = true;
        last_error_.clear();
      } else {
        changed_state = up_;
        up_ = false;
        last_error_ = report.status().ToString();
      }
      freshness = FreshnessLocked();
    }
    if (observer_ != nullptr) {
      if (report.ok()) observer_->OnGallerySync(*report);
      if (changed_state) observer_->OnGallerySyncState(report.status());
      observer_->OnGalleryFreshness(freshness);
    }
    if (report.ok()) {
      backoff = std::min(std::chrono::milliseconds(100), options_.max_backoff);
      // Returns early when the store signals a change; an error here shows at the next Sync.
      (void)gallery_->WaitForChange(options_.poll_interval);
    } else {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, backoff, [this] { return stop_; });
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
}

GalleryFreshness UnsharedFreshness(const Gallery& gallery) {
  GalleryFreshness f;
  f.store = gallery.store_kind();
  return f;
}

}  // namespace veriface
