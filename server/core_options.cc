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

FaceServiceOptions ServiceOptionsOf(const ServerConfig& config) {
  FaceServiceOptions options;
  options.limits.max_image_bytes = config.max_image_bytes;
  options.limits.max_image_pixels = config.max_image_pixels;
  options.limits.max_faces_per_image = config.max_faces_per_image;
  options.limits.max_images_per_enroll = config.max_images_per_enroll;
  options.limits.max_top_k = config.max_top_k;
  options.limits.max_page_size = config.max_page_size;
  options.limits.min_face_size_floor = config.min_face_size_floor;
  options.limits.max_templates = config.max_templates;
  options.fallback_threshold = config.fallback_threshold;
  return options;
}

GalleryLimits GalleryLimitsOf(const ServerConfig& config) {
  GalleryLimits limits;
  limits.max_templates = config.max_templates;
  limits.max_templates_per_identity = config.max_templates_per_identity;
  limits.max_page_size = config.max_page_size;
  limits.max_k = config.max_top_k;
  return limits;
}

}  // namespace veriface::server
