#include "core/gallery/model_switch.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace veriface {
namespace {

// Faces embedded per round of the catch-up: each round's images and chips are held at once.
constexpr int64_t kCatchUpBatch = 64;

}  // namespace

absl::Status CheckModelTarget(const ModelTarget& target) {
  if (target.model_id.empty()) return absl::InvalidArgumentError("the target model id is empty");
  if (target.embedding_dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("the target embedding size is ", target.embedding_dim));
  }
  return absl::OkStatus();
}

absl::Status CheckReembeddedSizes(const ModelTarget& target, const std::vector<ReembeddedTemplate>& values) {
  for (const ReembeddedTemplate& value : values) {
    if (static_cast<int64_t>(value.embedding.size()) != target.embedding_dim) {
      return absl::InvalidArgumentError(absl::StrCat("the re-embedding of template '", value.template_id, "' has ",
                                                     value.embedding.size(), " values; model '", target.model_id,
                                                     "' makes ", target.embedding_dim));
    }
  }
  return absl::OkStatus();
}

absl::Status EmbedRemaining(const std::function<absl::StatusOr<std::vector<StoredFace>>(int64_t limit)>& next,
                            const GalleryStore::EmbedFaces& embed,
                            const std::function<absl::Status(const std::vector<ReembeddedTemplate>&)>& put) {
  for (;;) {
    VF_ASSIGN_OR_RETURN(const std::vector<StoredFace> rest, next(kCatchUpBatch));
    if (rest.empty()) return absl::OkStatus();
    VF_ASSIGN_OR_RETURN(const std::vector<ReembeddedTemplate> values, embed(rest));
    if (values.size() != rest.size()) {
      return absl::InternalError(absl::StrCat("asked to embed ", rest.size(), " faces, got ", values.size()));
    }
    VF_RETURN_IF_ERROR(put(values));
  }
}

absl::Status CroplessTemplatesError(const std::string& store, const MigrationProgress& progress) {
  return absl::FailedPreconditionError(
      absl::StrCat(store, ": ", progress.without_crop, " templates of ", progress.identities_without_crop_count,
                   " identities keep no face crop and cannot be re-embedded; re-enrol them, or drop them "
                   "(--drop-templates-without-crop)"));
}

}  // namespace veriface
