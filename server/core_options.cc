#include "server/core_options.h"

namespace veriface::server {
namespace {

DynamicBatcherOptions StageOptions(const BatchingConfig& c) {
  DynamicBatcherOptions o;
  o.max_batch = c.max_batch;
  o.max_queue_delay = std::chrono::microseconds(c.max_queue_delay_us);
  o.max_queue_size = c.max_queue_size;
  o.workers = c.workers;
  return o;
}

}  // namespace

ModelOptions ModelOptionsOf(const ServerConfig& config) {
  return ModelOptions{config.model_dir, config.device, config.torch_threads};
}

BatchedEngineOptions EngineOptionsOf(const ServerConfig& config) {
  BatchedEngineOptions options;
  options.detect = StageOptions(config.detect);
  options.embed = StageOptions(config.embed);
  return options;
}

FaceServiceOptions ServiceOptionsOf(const ServerConfig& config) { return config.service; }

GalleryLimits GalleryLimitsOf(const ServerConfig& config) {
  GalleryLimits limits = config.gallery_limits;
  // What a request may ask of the gallery is the service's limit, written once under limits.*.
  limits.max_page_size = config.service.limits.max_page_size;
  limits.max_k = config.service.limits.max_top_k;
  return limits;
}

}  // namespace veriface::server
