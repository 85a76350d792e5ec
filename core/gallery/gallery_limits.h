#pragma once
// How much a gallery may hold and how much one call may ask of it.

#include <cstdint>

namespace veriface {

struct GalleryLimits {
  int64_t max_templates = 2'000'000;  // per gallery; CreateGallery may set a lower one
  int64_t max_templates_per_identity = 1000;
  int64_t max_id_length = 256;  // bytes, for identity ids, metadata keys and request ids
  int64_t max_metadata_entries = 32;
  int64_t max_metadata_bytes = 4096;  // keys plus values, after merging
  int max_page_size = 1000;           // List clamps larger page sizes to this
  int max_k = 1000;                   // Identify clamps larger k to this
  // An embedding is accepted as unit length when | ||e|| - 1 | <= norm_tolerance; it is then renormalised.
  float norm_tolerance = 1e-3f;
  int64_t max_galleries = 1000;
  int64_t max_gallery_name_length = 64;
  // How long a write's request id is remembered for retries.
  int64_t receipt_ttl_ms = 24LL * 3600 * 1000;
};

}  // namespace veriface
