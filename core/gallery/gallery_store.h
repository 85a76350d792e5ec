#pragma once
// Durable storage behind the in-memory gallery. Every mutating call returns only once its change is
// committed to stable storage: that is what lets the service acknowledge an Enroll or Delete.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/gallery_types.h"

namespace veriface {

class GalleryStore {
 public:
  virtual ~GalleryStore() = default;

  // Everything stored (identities, templates, the gallery's model id and dimension).
  virtual absl::StatusOr<GallerySnapshot> Load() = 0;

  // Records the model id and embedding size of a new (empty) gallery. FAILED_PRECONDITION if the
  // store already holds templates of another model.
  virtual absl::Status BindModel(const std::string& model_id, int64_t embedding_dim) = 0;

  // Inserts or updates `identity` and appends `templates`, atomically.
  virtual absl::Status AddTemplates(const IdentityRecord& identity, const std::vector<TemplateRecord>& templates) = 0;

  // Removes the identity and all its templates, leaving no trace of them in the file. NOT_FOUND if
  // there is no such identity.
  virtual absl::Status DeleteIdentity(const std::string& identity_id) = 0;
};

}  // namespace veriface
