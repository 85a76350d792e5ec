#pragma once
// The one place a gallery's index is chosen: the exact fp32 scan below options.exact_below templates,
// else what options.type names, built over the collection's current rows.

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/flat_index.h"
#include "core/gallery/gallery_index.h"
#include "core/gallery/index_options.h"

namespace veriface {

// INVALID_ARGUMENT naming the gallery.index key that is wrong, without building anything.
absl::Status CheckIndexOptions(const IndexOptions& options, int64_t dim);

// The index for `rows` (which must outlive it) as they are now: every live slot added. `gallery` names
// the gallery in options.on_build_progress reports.
absl::StatusOr<std::unique_ptr<GalleryIndex>> BuildIndex(const IndexOptions& options, const SlotRows* rows,
                                                         const std::string& gallery = "");

// Whether the index in use should be rebuilt because the gallery crossed options.exact_below.
bool WantsApproximate(const IndexOptions& options, int64_t live_templates);

}  // namespace veriface
