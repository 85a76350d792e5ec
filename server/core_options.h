#pragma once
// The server's configuration (config.h) as the serving core's options: which bundle on which device, the
// batching policy of each stage, the request limits and the gallery's limits. One translation, used by
// the server and by the benchmarks that drive the core with the server's settings.

#include "core/gallery/gallery.h"
#include "core/serving/batched_engine.h"
#include "core/serving/face_service.h"
#include "server/config.h"

namespace veriface::server {

ModelOptions ModelOptionsOf(const ServerConfig& config);
BatchedEngineOptions EngineOptionsOf(const ServerConfig& config);
FaceServiceOptions ServiceOptionsOf(const ServerConfig& config);
GalleryLimits GalleryLimitsOf(const ServerConfig& config);

}  // namespace veriface::server
