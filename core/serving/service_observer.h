#pragma once
// What FaceService reports about its work, for metrics. Free of any metrics library (as BatchObserver
// is) so that core/ stays independent of prometheus-cpp; the server adapts it to its registry.

#include <cstdint>

namespace veriface {

// Called from request threads concurrently: implementations must be thread-safe and must not block.
class ServiceObserver {
 public:
  virtual ~ServiceObserver() = default;
  // The detector found `faces` faces in one image of a request.
  virtual void OnFacesDetected(int /*faces*/) {}
  // The gallery's size, after opening and after every write.
  virtual void OnGallerySize(int64_t /*identities*/, int64_t /*templates*/) {}
};

}  // namespace veriface
