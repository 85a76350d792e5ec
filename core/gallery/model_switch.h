#pragma once
// The parts of a move to another model that are the same for every store (GalleryStore's migration
// calls): checking the target and the values, the switch's catch-up of what was enrolled since the last
// pass, and its refusal when templates keep no crop.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/gallery_store.h"
#include "core/gallery/gallery_types.h"

namespace veriface {

// INVALID_ARGUMENT unless the target has an id and a positive embedding size.
absl::Status CheckModelTarget(const ModelTarget& target);

// INVALID_ARGUMENT naming the first value whose size is not target.embedding_dim.
absl::Status CheckReembeddedSizes(const ModelTarget& target, const std::vector<ReembeddedTemplate>& values);

// Inside the switch's transaction: until `next(limit)` returns nothing, embeds its faces with `embed`
// and `put`s the values.
absl::Status EmbedRemaining(const std::function<absl::StatusOr<std::vector<StoredFace>>(int64_t limit)>& next,
                            const GalleryStore::EmbedFaces& embed,
                            const std::function<absl::Status(const std::vector<ReembeddedTemplate>&)>& put);

// The switch's FAILED_PRECONDITION when `progress` counts templates without a crop; `store` names the
// store for the message.
absl::Status CroplessTemplatesError(const std::string& store, const MigrationProgress& progress);

}  // namespace veriface
