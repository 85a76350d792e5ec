#pragma once
// The evaluator's embedding pipeline: images in LFW layout -> detect (cached) -> one face per image
// (with a counted fallback when none is found) -> test-time views -> backbone features (cached) ->
// head -> unit embeddings; and cosine similarities of the pairs of a pairs file.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/detect/face.h"
#include "core/eval/metrics.h"
#include "core/eval/pairs.h"
#include "core/model/face_model.h"
#include "core/model/test_time.h"
#include "trainer/eval/feature_cache.h"

namespace veriface {

struct EmbedOptions {
  int batch = 32;        // images per backbone pass (times the views per image in chips)
  bool progress = true;  // progress bars on stderr
  std::string tta;       // ParseTta spec; empty: the bundle's own ("flip" or "none")
  FaceSelection selection = FaceSelection::kCentral;
  FeatureCache* cache = nullptr;  // optional
};

struct ImageRecord {
  LfwImageId id;
  std::string path;
  int width = 0;
  int height = 0;
  int faces_found = 0;
  bool fallback = false;  // no face found: the chip was cut at fallback landmarks
  FaceDetection face;     // the face used (fallback: landmarks only, score 0)
};

struct EmbeddedImages {
  std::vector<ImageRecord> images;
  std::vector<std::vector<float>> embeddings;  // unit length, one per image
  TtaConfig tta;
  std::string fallback_method;  // how landmarks were chosen for images without a face
  int64_t detections_computed = 0;
  int64_t detections_cached = 0;
  int64_t chips_computed = 0;
  int64_t chips_cached = 0;
  double detect_seconds = 0;  // computing only (cache hits excluded)
  double embed_seconds = 0;   // backbone passes only

  int FindImage(const LfwImageId& id) const;  // index in images, -1 if absent
};

// Detects, aligns and embeds every image in `ids` (resolved under `resolver`). Errors name the image: an
// unreadable or undecodable file stops the run rather than silently dropping its pairs.
absl::StatusOr<EmbeddedImages> EmbedImages(const FaceModel& model, const std::vector<LfwImageId>& ids,
                                           LfwImageResolver& resolver, const EmbedOptions& options);

// Cosine similarity of the two images of every pair, in pairs-file order.
absl::StatusOr<std::vector<double>> PairSimilarities(const EmbeddedImages& embedded, const PairsFile& pairs);

// The pairs file's scores and truths, ready for the metrics.
absl::StatusOr<VerificationScores> ScorePairs(const EmbeddedImages& embedded, const PairsFile& pairs);

// The landmarks used for a face that the detector missed: the mean landmarks of the faces that were
// found, relative to their image size, placed in this image; with no face found anywhere, dlib's template
// over the image's centred square (the image is taken to be a face crop).
Landmarks5 FallbackLandmarks(const std::vector<ImageRecord>& found, int width, int height);

// Unit-length cosine similarity of two embeddings (sizes must match).
double Cosine(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace veriface
