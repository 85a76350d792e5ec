#pragma once
// Plain values the gallery and its store exchange.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace veriface {

// One enrolled face: a unit-length embedding of one image of one person. (Not "FaceTemplate": that
// name is the alignment template in core/align/aligner.h.)
struct TemplateRecord {
  std::string template_id;  // unique in the gallery
  std::string identity_id;
  std::string model_id;  // the model bundle that produced the embedding
  std::vector<float> embedding;
  int64_t created_unix_ms = 0;
};

// A person: an id chosen by the caller, free-form display metadata, and one or more templates.
struct IdentityRecord {
  std::string identity_id;
  std::map<std::string, std::string> metadata;
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
};

// Everything a store holds, as read back at start-up.
struct GallerySnapshot {
  std::string model_id;  // the model the gallery was built with; empty for a new gallery
  int64_t embedding_dim = 0;
  std::vector<IdentityRecord> identities;
  std::vector<TemplateRecord> templates;
};

}  // namespace veriface
