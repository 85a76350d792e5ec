#pragma once
// Moving a gallery store to another model without re-enrolling anyone: passes re-embed the templates'
// stored face crops with the new model while the old one keeps serving, then one transaction switches
// every template over. Nothing here knows the model: the caller passes the embedding function, so the
// same steps run from the veriface-migrate tool and from tests. A pass stopped at any point resumes where
// it stopped, since each batch's values are committed beside the templates.

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gallery/gallery_store.h"
#include "core/gallery/gallery_types.h"

namespace veriface {

// Unit-length embeddings under the target model, one per crop, in order.
using CropEmbedder = std::function<absl::StatusOr<std::vector<std::vector<float>>>(const std::vector<FaceCrop>&)>;

struct MigrationOptions {
  int batch_size = 32;      // crops embedded and committed together
  int64_t max_batches = 0;  // 0: until no template is left; else stop after this many (a later pass resumes)
  std::function<void(const MigrationProgress&)> on_progress;  // after each committed batch
  int64_t max_listed = 20;                                    // identities needing re-enrolment that the progress names
};

// Re-embeds the templates that keep a crop and have no value for `target` yet; returns where the
// migration stands after it.
absl::StatusOr<MigrationProgress> ReembedPass(GalleryStore& store, const ModelTarget& target, const CropEmbedder& embed,
                                              const MigrationOptions& options = {});

// Finishes the migration in one transaction (GalleryStore::SwitchModel): templates enrolled since the
// last pass are embedded inside it. Returns the number of templates dropped (`drop_without_crop`).
absl::StatusOr<int64_t> SwitchOver(GalleryStore& store, const ModelTarget& target, const CropEmbedder& embed,
                                   bool drop_without_crop);

}  // namespace veriface
