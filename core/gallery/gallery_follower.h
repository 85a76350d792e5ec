#pragma once
// Keeps a gallery in step with a store that other replicas write too: a thread that applies their
// changes as soon as the store signals them (or every poll interval, whichever comes first), and keeps
// trying, with backoff, while the store is unreachable. Reads keep being served from memory meanwhile;
// freshness() says how far behind that memory may be.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "core/gallery/follow_options.h"
#include "core/gallery/gallery.h"

namespace veriface {

// How current a replica's in-memory gallery is.
struct GalleryFreshness {
  std::string store;              // the store's kind
  bool shared = false;            // other replicas write to it
  bool store_up = true;           // the last attempt to reach it succeeded
  bool may_be_stale = false;      // other replicas' recent writes may be missing here
  double seconds_since_sync = 0;  // since the last successful sync; 0 for a store only this process writes
  std::string last_error;         // of the last failed sync, while it is failing
};

class FollowObserver {
 public:
  virtual ~FollowObserver() = default;
  virtual void OnGallerySync(const SyncReport& /*report*/) {}
  virtual void OnGalleryFreshness(const GalleryFreshness& /*freshness*/) {}
  // Called when syncing starts failing and when it recovers (status OK), not on every attempt.
  virtual void OnGallerySyncState(const absl::Status& /*status*/) {}
};

class GalleryFollower {
 public:
  // Follows `gallery` (which must outlive this) until destroyed; `observer` may be null.
  GalleryFollower(Gallery* gallery, FollowOptions options, std::shared_ptr<FollowObserver> observer);
  ~GalleryFollower();  // stops the thread, within about one poll interval
  GalleryFollower(const GalleryFollower&) = delete;
  GalleryFollower& operator=(const GalleryFollower&) = delete;

  GalleryFreshness freshness() const;

 private:
  void Run();
  GalleryFreshness FreshnessLocked() const;

  Gallery* const gallery_;
  const FollowOptions options_;
  const std::shared_ptr<FollowObserver> observer_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool up_ = true;
  std::string last_error_;
  std::chrono::steady_clock::time_point last_sync_;
  std::thread thread_;  // last: starts once everything above is ready
};

// The freshness of a gallery that has no follower (its store has no other writers).
GalleryFreshness UnsharedFreshness(const Gallery& gallery);

}  // namespace veriface
