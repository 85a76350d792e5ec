#pragma once
// Plain values the gallery and its store exchange.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace veriface {

// The gallery that requests naming none use; it always exists and cannot be deleted, so that clients
// written before named galleries keep working.
inline constexpr char kDefaultGalleryName[] = "default";

// What another model needs to embed a template's face again (core/align/face_crop.h makes and opens
// it): the face with a margin, as JPEG, and where the detector found it in those pixels. Empty `jpeg`:
// none was kept.
struct FaceCrop {
  std::string jpeg;
  // The box (x1, y1, x2, y2), then the five landmarks (x, y): eyes, nose, mouth corners.
  std::array<float, 14> points{};
  float score = 0;  // the detector's confidence
};

// One enrolled face: a unit-length embedding of one image of one person. (Not "FaceTemplate": that
// name is the alignment template in core/align/aligner.h.)
struct TemplateRecord {
  std::string template_id;  // unique in the store, across galleries
  std::string identity_id;
  std::string model_id;  // the model bundle that produced the embedding
  std::vector<float> embedding;
  int64_t created_unix_ms = 0;
  // Written with the template when the deployment keeps crops; Load never reads the images back (a
  // gallery of millions would hold them all in memory for nothing), only whether there is one.
  FaceCrop face_crop;
  bool has_face_crop = false;
};

// A person: an id chosen by the caller (unique within its gallery), free-form display metadata, and one
// or more templates.
struct IdentityRecord {
  std::string identity_id;
  std::map<std::string, std::string> metadata;
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
};

// A named gallery (a collection): one application's people, apart from every other application's.
struct GalleryRecord {
  std::string name;
  int64_t created_unix_ms = 0;
  int64_t max_templates = 0;  // 0: the deployment's gallery.max_templates
};

// One identity as stored: its record and its templates in enrolment order.
struct IdentityState {
  IdentityRecord record;
  std::vector<TemplateRecord> templates;
};

// One gallery's contents.
struct GalleryContents {
  GalleryRecord record;
  std::vector<IdentityState> identities;  // ordered by identity id
};

// Everything a store holds, as read back at start-up, with the point in the store's history it shows.
struct StoreSnapshot {
  std::string model_id;  // the model the store was bound to; empty for a new store
  int64_t embedding_dim = 0;
  std::vector<GalleryContents> galleries;
  std::string cursor;  // for GalleryStore::ChangesSince
};

// What a write that carried a client request id did, kept so that a retry of it returns the first
// result instead of writing again.
struct WriteReceipt {
  enum class Kind { kEnroll, kDelete };
  Kind kind = Kind::kEnroll;
  // A digest of the kind, gallery and identity, so that reusing a request id for another request is
  // refused without the receipt keeping the identity id itself in the clear.
  std::string fingerprint;
  std::vector<std::string> template_ids;  // kEnroll: the templates it added
  int64_t templates_deleted = 0;          // kDelete
  int64_t created_unix_ms = 0;
};

// Changes other writers made to a store shared with them, as the current state of what they touched.
// A follower replaces what it holds for each entry; applying a state twice is harmless, so a change may
// be reported more than once but is never skipped.
struct ChangeSet {
  std::string cursor;        // pass to the next ChangesSince
  bool full_reload = false;  // the cursor is too old for the change log: `snapshot` holds everything
  std::optional<StoreSnapshot> snapshot;
  // Galleries are created and deleted rarely, so a change to one carries all it holds.
  struct GalleryChange {
    std::string name;
    std::optional<GalleryContents> contents;  // nullopt: the gallery is gone
  };
  struct IdentityChange {
    std::string gallery;
    std::string identity_id;
    std::optional<IdentityState> state;  // nullopt: the identity is gone
  };
  std::vector<GalleryChange> galleries;
  std::vector<IdentityChange> identities;
  // For each change another process made: seconds from its write to this read, on the store's clock.
  std::vector<double> lag_seconds;
};

// ---- Moving a store to another model (core/gallery/model_migration.h)

// The model a store is moving to.
struct ModelTarget {
  std::string model_id;
  int64_t embedding_dim = 0;
};

// A template's face, to embed with the target model.
struct StoredFace {
  std::string template_id;
  std::string gallery;
  std::string identity_id;
  FaceCrop crop;
};

// A template's embedding under the target model, kept beside the template until the switch.
struct ReembeddedTemplate {
  std::string template_id;
  std::vector<float> embedding;
};

struct MigrationProgress {
  std::string from_model;  // what the store serves now
  std::string to_model;
  int64_t templates = 0;
  int64_t reembedded = 0;    // templates with an embedding under to_model waiting for the switch
  int64_t without_crop = 0;  // templates that cannot be re-embedded: their identities need re-enrolment
  struct Identity {
    std::string gallery;
    std::string identity_id;
    int64_t templates_without_crop = 0;
  };
  std::vector<Identity> identities_without_crop;  // at most the number asked for, by gallery and id
  int64_t identities_without_crop_count = 0;      // all of them
};

}  // namespace veriface
