#pragma once
// The service's requests and answers as plain C++ values: what veriface.v1's messages carry, minus the
// wire format. The server translates between the two and does nothing else with them.
//
// Image bytes are borrowed (absl-free std::string_view into the caller's request), never copied: an
// enrolment may carry 64 images of several megabytes each.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/detect/face.h"
#include "core/gallery/gallery.h"
#include "core/gallery/gallery_follower.h"
#include "core/gallery/gallery_report.h"
#include "core/model/model_spec.h"
#include "core/quality/face_quality.h"
#include "core/serving/face_engine.h"

namespace veriface {

// Which face of a multi-face image a request means. kDefault is the call's own default: the largest face
// for Verify and Identify, exactly one face for Enroll.
enum class FaceChoice { kDefault, kLargest, kCentral, kHighestScore, kSingle };

// One image of a request that needs one face from it.
struct ImageInput {
  std::string_view bytes;  // encoded JPEG, PNG, ...; borrowed
  FaceChoice choice = FaceChoice::kDefault;
  int min_face_size = 0;                                  // pixels; 0: the model's default
  QualityLevel min_quality = QualityLevel::kUnspecified;  // kUnspecified: the service's probe minimum
};

// The threshold a request asks for: the model's default operating point, a value, or a named point.
struct ThresholdChoice {
  enum class Kind { kModelDefault, kValue, kOperatingPoint };
  Kind kind = Kind::kModelDefault;
  double value = 0;             // kValue
  std::string operating_point;  // kOperatingPoint
};

// The threshold a decision used, and where it came from: an operating point's name, "request", or
// "server-fallback" when the bundle has no calibrated threshold.
struct Threshold {
  double value = 0;
  std::string source;
};

// The face a request used from one of its images.
struct UsedFace {
  int index = 0;  // among the faces found, by descending score
  FaceDetection face;
  int faces_detected = 0;
  int image_width = 0;
  int image_height = 0;
  FaceQuality quality;
};

// ---- Embed

struct EmbedQuery {
  std::string_view image;
  int min_face_size = 0;
  int max_faces = 0;  // 0: the service's limit
  bool skip_embeddings = false;
};

struct EmbeddedFace {
  FaceDetection face;
  Embedding embedding;  // empty with skip_embeddings
  FaceQuality quality;
};

struct EmbedAnswer {
  std::vector<EmbeddedFace> faces;  // by descending score
  int faces_omitted = 0;            // found beyond max_faces
  int image_width = 0;
  int image_height = 0;
  std::string model_id;
};

// ---- Verify

// One side of a Verify: a face in an image, an embedding, or an enrolled identity.
struct FaceInput {
  enum class Kind { kNone, kImage, kEmbedding, kIdentity };
  Kind kind = Kind::kNone;
  ImageInput image;
  std::vector<float> embedding;
  std::string identity_id;
  std::string gallery;  // kIdentity: the identity's gallery; "" for the default
};

struct VerifyQuery {
  FaceInput a, b;
  ThresholdChoice threshold;
};

struct VerifyAnswer {
  float similarity = 0;
  bool match = false;
  Threshold threshold;
  std::string model_id;
  std::optional<UsedFace> face_a, face_b;  // for image sides
  std::string template_a, template_b;      // for identity sides: the template that gave the similarity
};

// ---- Identify

struct IdentifyQuery {
  std::string gallery;  // "" for the default
  ImageInput image;
  int top_k = 0;  // 0: 5
  ThresholdChoice threshold;
  bool include_below_threshold = false;
};

struct Candidate {
  std::string identity_id;
  float similarity = 0;
  bool match = false;
  std::string template_id;
  std::map<std::string, std::string> metadata;
};

struct IdentifyAnswer {
  std::vector<Candidate> candidates;  // most similar first
  Threshold threshold;
  std::string model_id;
  UsedFace face;
  std::string gallery;  // the one searched
  SearchInfo search;    // the index that answered
};

// ---- Enroll, Delete, Get, List

struct EnrollQuery {
  std::string gallery;     // "" for the default
  std::string request_id;  // "" for none; a retry with the same id gets the first answer
  std::string identity_id;
  std::map<std::string, std::string> metadata;
  std::vector<std::string_view> images;
  FaceChoice choice = FaceChoice::kDefault;  // kDefault: exactly one face per image
  int min_face_size = 0;
  QualityLevel min_quality = QualityLevel::kUnspecified;  // kUnspecified: the service's enrolment minimum
};

struct EnrollAnswer {
  std::string identity_id;
  std::vector<std::string> template_ids;  // the new ones, in image order
  int template_count = 0;                 // the identity's, after this enrolment
  std::vector<UsedFace> faces;
  std::string gallery;
  bool replayed = false;  // template_ids are those of an earlier request with this request id
};

// Names one identity: a Delete, Get or List names a gallery ("" for the default).
struct IdentityRef {
  std::string gallery;
  std::string identity_id;
};

struct DeleteQuery {
  IdentityRef identity;
  std::string request_id;  // as in EnrollQuery
};

struct DeleteAnswer {
  std::string identity_id;
  int templates_deleted = 0;
  std::string gallery;
  bool replayed = false;
};

struct ListAnswer {
  IdentityPage page;
  int64_t total_identities = 0;
};

// ---- GetGalleryReport

struct GalleryReportQuery {
  std::string gallery;              // "" for the default
  std::vector<double> target_fars;  // empty: 1e-2, 1e-3, 1e-4
  int64_t max_templates = 0;        // 0: 20000
  uint64_t seed = 0;                // 0: 1
  int histogram_bins = 0;           // 0: 50
};

struct GalleryReportAnswer {
  GalleryReport report;         // its first threshold is the one in force ("in force")
  std::string in_force_source;  // as Threshold::source
  std::string model_id;
};

// ---- GetModelInfo

struct ServiceInfo {
  const ModelSpec* spec = nullptr;  // the served bundle's; lives as long as the service
  Threshold default_threshold;
  std::string device;
  int64_t gallery_identities = 0;  // over all galleries
  int64_t gallery_templates = 0;
  int64_t galleries = 0;
  GalleryFreshness freshness;
};

}  // namespace veriface
