#pragma once
// What FaceService reports about its work, for metrics. Free of any metrics library (as BatchObserver
// is) so that core/ stays independent of prometheus-cpp; the server adapts it to its registry.

#include <cstdint>

#include "core/gallery/gallery_follower.h"

namespace veriface {

// Called from request threads (and the gallery's follower thread) concurrently: implementations must be
// thread-safe and must not block.
class ServiceObserver : public FollowObserver {
 public:
  virtual ~ServiceObserver() = default;
  // The detector found `faces` faces in one image of a request.
  virtual void OnFacesDetected(int /*faces*/) {}
  // The gallery's size over all its galleries, after opening, after every write and after every sync that
  // brought changes.
  virtual void OnGallerySize(int64_t /*identities*/, int64_t /*templates*/, int64_t /*galleries*/) {}
  // Calls doing model work now (limits.max_concurrent_calls bounds them), after each one starts or ends.
  virtual void OnCallsInProgress(int /*calls*/) {}
};

}  // namespace veriface
