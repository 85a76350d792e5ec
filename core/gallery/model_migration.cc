#include "core/gallery/model_migration.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/gallery/gallery_limits.h"
#include "core/gallery/model_switch.h"
#include "core/gallery/validation.h"

namespace veriface {
namespace {

absl::StatusOr<std::vector<ReembeddedTemplate>> EmbedFaces(const std::vector<StoredFace>& faces,
                                                           const ModelTarget& target, const CropEmbedder& embed) {
  std::vector<FaceCrop> crops;
  crops.reserve(faces.size());
  for (const StoredFace& face : faces) crops.push_back(face.crop);
  absl::StatusOr<std::vector<std::vector<float>>> embedded = embed(crops);
  if (!embedded.ok()) {
    return absl::Status(embedded.status().code(),
                        absl::StrCat("re-embedding ", faces.size(), " templates from '", faces.front().template_id,
                                     "' on: ", embedded.status().message()));
  }
  if (embedded->size() != faces.size()) {
    return absl::InternalError(
        absl::StrCat("the embedder returned ", embedded->size(), " embeddings for ", faces.size(), " crops"));
  }
  // Checked as an enrolment checks what it stores: a wrong size, a non-finite value or a vector far from
  // unit length is refused, with the template named.
  const float tolerance = GalleryLimits().norm_tolerance;
  std::vector<ReembeddedTemplate> out;
  out.reserve(faces.size());
  for (size_t i = 0; i < faces.size(); ++i) {
    VF_ASSIGN_OR_RETURN(std::vector<float> row,
                        NormalizedEmbedding((*embedded)[i], target.embedding_dim, tolerance,
                                            absl::StrCat("the re-embedding of template '", faces[i].template_id, "'"),
                                            target.model_id));
    out.push_back(ReembeddedTemplate{faces[i].template_id, std::move(row)});
  }
  return out;
}

}  // namespace

absl::StatusOr<MigrationProgress> ReembedPass(GalleryStore& store, const ModelTarget& target, const CropEmbedder& embed,
                                              const MigrationOptions& options) {
  VF_RETURN_IF_ERROR(CheckModelTarget(target));
  if (options.batch_size <= 0) return absl::InvalidArgumentError("batch_size must be positive");
  VF_ASSIGN_OR_RETURN(MigrationProgress now, store.Progress(target, 0));
  const MigrationProgress& before = now;
  if (before.from_model == target.model_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("the gallery is bound to model '", target.model_id, "' already: there is nothing to migrate"));
  }
  for (int64_t batch = 0; options.max_batches == 0 || batch < options.max_batches; ++batch) {
    VF_ASSIGN_OR_RETURN(const std::vector<StoredFace> faces, store.FacesToReembed(target, options.batch_size));
    if (faces.empty()) break;
    VF_ASSIGN_OR_RETURN(const std::vector<ReembeddedTemplate> values, EmbedFaces(faces, target, embed));
    VF_RETURN_IF_ERROR(store.PutReembedded(target, values));
    // Counted here rather than asked of the store: its counts scan every template.
    now.reembedded += static_cast<int64_t>(values.size());
    if (options.on_progress) options.on_progress(now);
  }
  return store.Progress(target, options.max_listed);
}

absl::StatusOr<int64_t> SwitchOver(GalleryStore& store, const ModelTarget& target, const CropEmbedder& embed,
                                   bool drop_without_crop) {
  VF_RETURN_IF_ERROR(CheckModelTarget(target));
  return store.SwitchModel(target, drop_without_crop,
                           [&](const std::vector<StoredFace>& faces) { return EmbedFaces(faces, target, embed); });
}

}  // namespace veriface
