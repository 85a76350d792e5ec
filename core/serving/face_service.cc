#include "core/serving/face_service.h"

#include <chrono>
#include <cmath>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/align/face_crop.h"
#include "core/common/retry_after.h"
#include "core/common/status_macros.h"
#include "core/detect/detection_scale.h"
#include "core/image/decode.h"
#include "core/image/image_header.h"
#include "core/serving/operating_point.h"

namespace veriface {
namespace {

constexpr int kDefaultTopK = 5;
constexpr int kDefaultPageSize = 100;

// Prefixes a status's message with the request field it is about, keeping its code.
absl::Status Annotate(const absl::Status& s, const std::string& field) {
  if (s.ok() || field.empty()) return s;
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

// `min_face` is the smallest face searched for, in the image's pixels (larger than asked for when the
// image was searched on a smaller copy).
absl::StatusOr<int> ChooseFace(const std::vector<FaceDetection>& faces, FaceChoice choice, const cv::Mat& rgb,
                               int min_face, const std::string& field) {
  if (faces.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(field, ": no face found in the ", rgb.cols, "x", rgb.rows,
                                                      " image (faces smaller than ", min_face,
                                                      " pixels are not searched for)"));
  }
  FaceSelection rule = FaceSelection::kLargest;
  switch (choice) {
    case FaceChoice::kSingle:
      if (faces.size() > 1) {
        return absl::FailedPreconditionError(
            absl::StrCat(field, ": ", faces.size(),
                         " faces found where exactly one is needed; send a photo of one person or set face_selection "
                         "(LARGEST, CENTRAL or HIGHEST_SCORE) to choose one"));
      }
      return 0;
    case FaceChoice::kCentral:
      rule = FaceSelection::kCentral;
      break;
    case FaceChoice::kHighestScore:
      rule = FaceSelection::kHighestScore;
      break;
    case FaceChoice::kLargest:
    case FaceChoice::kDefault:
      break;
  }
  return SelectFace(faces, rule, rgb.cols, rgb.rows);
}

float Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

// A caller's embedding scaled to unit length, after checking that it can be.
absl::StatusOr<std::vector<float>> UnitEmbedding(const std::vector<float>& e, int64_t dim, const std::string& field) {
  if (static_cast<int64_t>(e.size()) != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " has ", e.size(), " values; the model's embeddings have ", dim));
  }
  double norm2 = 0;
  for (const float v : e) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError(absl::StrCat(field, " contains a non-finite value"));
    norm2 += static_cast<double>(v) * v;
  }
  if (norm2 < 1e-12) return absl::InvalidArgumentError(absl::StrCat(field, " is all zeros"));
  const double inv = 1.0 / std::sqrt(norm2);
  std::vector<float> out;
  out.reserve(e.size());
  for (const float v : e) out.push_back(static_cast<float>(v * inv));
  return out;
}

}  // namespace

// One image of a request that needs exactly one face from it.
struct FaceService::FaceJob {
  std::string_view bytes;
  std::string field;  // "a.image", "images[3]", ...
  FaceChoice choice = FaceChoice::kDefault;
  int min_face_size = 0;
  QualityLevel min_quality = QualityLevel::kUnspecified;  // as the request asked
  bool enrolment = false;                                 // whose default minimum applies
};

// The gallery-calibrated threshold last computed, and when.
struct FaceService::GalleryThresholdCache {
  std::mutex mutex;
  std::optional<Threshold> threshold;  // none: the gallery's pairs were too few for a reliable estimate
  std::chrono::steady_clock::time_point computed_at;
  bool computed = false;
  bool computing = false;  // a caller is renewing it (a report over the gallery: milliseconds to a second)
};

struct FaceService::FaceResult {
  Embedding embedding;
  UsedFace used;
  FaceCrop crop;  // enrolments, when the service keeps crops
};

absl::StatusOr<std::unique_ptr<FaceService>> FaceService::Create(FaceServiceOptions options,
                                                                 std::unique_ptr<FaceEngine> engine,
                                                                 std::unique_ptr<Gallery> gallery,
                                                                 std::shared_ptr<ServiceObserver> observer) {
  if (engine == nullptr) return absl::InvalidArgumentError("FaceService needs an engine");
  if (gallery == nullptr) return absl::InvalidArgumentError("FaceService needs a gallery");
  const ModelSpec& spec = engine->spec();
  if (gallery->model_id() != spec.model_id || gallery->embedding_dim() != spec.embedding_dim) {
    return absl::FailedPreconditionError(absl::StrCat("the gallery is bound to model '", gallery->model_id(),
                                                      "', not the engine's '", spec.model_id, "'"));
  }
  const auto calibrated = spec.DefaultThreshold();
  Threshold threshold = calibrated.ok() ? Threshold{*calibrated, spec.default_operating_point}
                                        : Threshold{options.fallback_threshold, "server-fallback"};
  if (options.gallery_calibration.enabled) {
    VF_RETURN_IF_ERROR(
        FarOfOperatingPoint(options.gallery_calibration.operating_point, "gallery_calibration.operating_point")
            .status());
  }
  const FollowOptions follow = options.follow;
  std::unique_ptr<FaceService> service(new FaceService(std::move(options), std::move(engine), std::move(gallery),
                                                       std::move(observer), std::move(threshold)));
  service->PublishGallerySize();
  if (!service->gallery_->shared() && service->observer_ != nullptr) {
    // Nothing follows a store only this process writes: its freshness is said once, so that a metric
    // of it reads "up" from the start.
    service->observer_->OnGalleryFreshness(UnsharedFreshness(*service->gallery_));
  }
  if (service->gallery_->shared()) {
    service->follower_ = std::make_unique<GalleryFollower>(service->gallery_.get(), follow,
                                                           std::make_shared<FollowRelay>(service.get()));
  }
  return service;
}

// Passes the follower's reports on to the service's observer, and republishes the gallery's size when a
// sync brought changes from other replicas.
class FaceService::FollowRelay : public FollowObserver {
 public:
  explicit FollowRelay(const FaceService* service) : service_(service) {}
  void OnGallerySync(const SyncReport& report) override {
    if (service_->observer_ != nullptr) service_->observer_->OnGallerySync(report);
    if (report.changes > 0 || report.full_reload) service_->PublishGallerySize();
  }
  void OnGalleryFreshness(const GalleryFreshness& freshness) override {
    if (service_->observer_ != nullptr) service_->observer_->OnGalleryFreshness(freshness);
  }
  void OnGallerySyncState(const absl::Status& status) override {
    if (service_->observer_ != nullptr) service_->observer_->OnGallerySyncState(status);
  }

 private:
  const FaceService* const service_;
};

FaceService::FaceService(FaceServiceOptions options, std::unique_ptr<FaceEngine> engine,
                         std::unique_ptr<Gallery> gallery, std::shared_ptr<ServiceObserver> observer,
                         Threshold default_threshold)
    : options_(std::move(options)),
      engine_(std::move(engine)),
      gallery_(std::move(gallery)),
      observer_(std::move(observer)),
      default_threshold_(std::move(default_threshold)),
      gallery_threshold_(std::make_unique<GalleryThresholdCache>()),
      pixel_budget_(std::make_unique<PixelBudget>(options_.limits.max_inflight_pixels)),
      call_slots_(options_.limits.max_concurrent_calls, [observer = observer_.get()](int in_use) {
        if (observer != nullptr) observer->OnCallsInProgress(in_use);
      }) {}

FaceService::~FaceService() {
  follower_.reset();
  Shutdown();
}

void FaceService::Shutdown() { engine_->Shutdown(); }

void FaceService::PublishGallerySize() const {
  if (observer_ != nullptr) {
    observer_->OnGallerySize(gallery_->identity_count(), gallery_->template_count(), gallery_->gallery_count());
  }
}

absl::StatusOr<std::shared_ptr<const Collection>> FaceService::FindGallery(const std::string& name,
                                                                           const std::string& field) const {
  VF_RETURN_IF_ERROR(gallery_->CheckGalleryName(name, field));
  return gallery_->Find(name);
}

absl::StatusOr<Threshold> FaceService::Resolve(const ThresholdChoice& choice) const {
  switch (choice.kind) {
    case ThresholdChoice::Kind::kValue: {
      const double t = choice.value;
      if (!(t >= -1 && t <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat("threshold.threshold is ", t, "; it must be in [-1, 1]"));
      }
      return Threshold{t, "request"};
    }
    case ThresholdChoice::Kind::kOperatingPoint: {
      const auto& points = spec().thresholds;
      const auto it = points.find(choice.operating_point);
      const GalleryCalibrationOptions& calibration = options_.gallery_calibration;
      if (calibration.enabled && choice.operating_point == calibration.operating_point) {
        if (auto calibrated = GalleryThreshold()) return *calibrated;
      }
      if (it == points.end()) {
        std::vector<std::string> names;
        for (const auto& [name, value] : points) names.push_back(name);
        return absl::InvalidArgumentError(
            absl::StrCat("threshold.operating_point '", choice.operating_point, "' is not one of the model's (",
                         names.empty() ? "it has none calibrated" : absl::StrJoin(names, ", "), ")"));
      }
      return Threshold{it->second, it->first};
    }
    case ThresholdChoice::Kind::kModelDefault:
      break;
  }
  if (options_.gallery_calibration.enabled &&
      default_threshold_.source == options_.gallery_calibration.operating_point) {
    if (auto calibrated = GalleryThreshold()) return *calibrated;
  }
  return default_threshold_;
}

std::optional<Threshold> FaceService::GalleryThreshold() const {
  const GalleryCalibrationOptions& calibration = options_.gallery_calibration;
  GalleryThresholdCache& cache = *gallery_threshold_;
  const auto now = std::chrono::steady_clock::now();
  {
    const std::lock_guard<std::mutex> lock(cache.mutex);
    const bool fresh = cache.computed && now - cache.computed_at < std::chrono::seconds(calibration.refresh_seconds);
    // One caller renews the estimate; the others meanwhile keep the previous one rather than wait for it.
    if (fresh || cache.computing) return cache.threshold;
    cache.computing = true;
  }
  std::optional<Threshold> threshold;
  const auto collection = gallery_->Find(calibration.gallery);
  const auto far = FarOfOperatingPoint(calibration.operating_point, "gallery_calibration.operating_point");
  if (collection.ok() && far.ok()) {
    GalleryReportOptions report_options;
    report_options.target_fars = {*far};
    const auto report = BuildGalleryReport(**collection, {}, report_options);
    if (report.ok() && !report->far_targets.empty() && report->far_targets.front().reliable) {
      threshold = Threshold{report->far_targets.front().threshold,
                            absl::StrCat("gallery:", calibration.gallery, ":", calibration.operating_point)};
    }
  }
  const std::lock_guard<std::mutex> lock(cache.mutex);
  cache.threshold = threshold;
  cache.computed = true;
  cache.computed_at = now;
  cache.computing = false;
  return threshold;
}

absl::StatusOr<DetectorOptions> FaceService::DetectionFor(int min_face_size, const std::string& field) const {
  DetectorOptions options = spec().detector_defaults;
  if (min_face_size != 0) {
    const int floor = options_.limits.min_face_size_floor;
    if (min_face_size < floor || min_face_size > 10000) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".detection.min_face_size is ", min_face_size,
                                                     "; it must be 0 (the model's default, ", options.min_face_size,
                                                     ") or between ", floor, " and 10000"));
    }
    options.min_face_size = min_face_size;
  }
  return options;
}

absl::StatusOr<cv::Mat> FaceService::Decode(std::string_view bytes, const std::string& field) const {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": the image is empty (0 bytes)"));
  DecodeLimits limits;
  limits.max_bytes = options_.limits.max_image_bytes;
  limits.max_pixels = options_.limits.max_image_pixels;
  auto rgb = DecodeImage(bytes, limits);
  if (!rgb.ok()) {
    // An image over the size limits is the caller's to fix, not a sign of an overloaded server.
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", rgb.status().message()));
  }
  return rgb;
}

absl::StatusOr<CallSlots::Slot> FaceService::AdmitModelWork() {
  VF_ASSIGN_OR_RETURN(CallSlots::Slot slot, call_slots_.Take());
  VF_RETURN_IF_ERROR(engine_->CheckCapacity());
  return slot;
}

absl::StatusOr<PixelBudget::Reservation> FaceService::ReservePixels(const std::vector<std::string_view>& images,
                                                                    const std::string& what) {
  int64_t pixels = 0;
  for (const std::string_view bytes : images) {
    const auto header = ReadImageHeader(bytes);
    if (!header.ok()) continue;
    const int64_t area = header->pixels();
    if (area <= options_.limits.max_image_pixels) pixels += area;
  }
  absl::StatusOr<PixelBudget::Reservation> reserved = pixel_budget_->Reserve(pixels, what);
  // Pixels come back as the calls holding them finish, which is what the call slots' hint prices.
  if (absl::IsResourceExhausted(reserved.status())) return WithRetryAfter(reserved.status(), call_slots_.RetryHint());
  return reserved;
}

absl::Status FaceService::CheckQuality(const FaceJob& job, const FaceQuality& quality) const {
  const QualityLevel asked = job.min_quality;
  const QualityLevel required = asked != QualityLevel::kUnspecified
                                    ? asked
                                    : (job.enrolment ? options_.quality.enroll_min : options_.quality.probe_min);
  if (quality.level >= required) return absl::OkStatus();
  // The reasons that put the face below what is required (a MEDIUM reason does not explain a LOW face).
  const auto worse_than_required = static_cast<QualityLevel>(static_cast<int>(required) - 1);
  const std::string why = DescribeIssues(quality, options_.quality.policy, worse_than_required);
  const bool asked_here = asked != QualityLevel::kUnspecified;
  const char* whose =
      asked_here ? "this request asks for" : (job.enrolment ? "enrolment requires" : "the server requires");
  const std::string remedy = asked_here ? "send a better photo or lower min_quality"
                                        : absl::StrCat("send a better photo, or set min_quality to QUALITY_LEVEL_",
                                                       QualityLevelName(quality.level), " to accept it anyway");
  return absl::FailedPreconditionError(absl::StrCat(job.field, ": the face's quality is ",
                                                    QualityLevelName(quality.level), ", below the ",
                                                    QualityLevelName(required), " ", whose, ": ", why, "; ", remedy));
}

absl::StatusOr<std::vector<FaceService::FaceResult>> FaceService::EmbedOneFaceEach(const std::vector<FaceJob>& jobs,
                                                                                   const CallBudget& budget) {
  VF_ASSIGN_OR_RETURN(const CallSlots::Slot slot, AdmitModelWork());
  std::vector<std::string_view> images;
  for (const FaceJob& job : jobs) images.push_back(job.bytes);
  // Held until the decoded images are gone, when this returns.
  VF_ASSIGN_OR_RETURN(
      const PixelBudget::Reservation held,
      ReservePixels(images,
                    jobs.size() == 1 ? jobs.front().field : absl::StrCat("this request's ", jobs.size(), " images")));
  std::vector<cv::Mat> images_rgb;  // full size: faces are cut from these
  std::vector<ScaledDetection> scaled;
  std::vector<DetectRequest> requests;
  images_rgb.reserve(jobs.size());  // FaceToEmbed points into it: no reallocation
  for (const FaceJob& job : jobs) {
    VF_ASSIGN_OR_RETURN(cv::Mat rgb, Decode(job.bytes, job.field));
    VF_ASSIGN_OR_RETURN(DetectorOptions options, DetectionFor(job.min_face_size, job.field));
    scaled.push_back(
        ScaleForDetection(rgb, options, options_.limits.detect_max_pixels, spec().detector_defaults.min_face_size));
    requests.push_back(DetectRequest{scaled.back().rgb, scaled.back().options});
    images_rgb.push_back(std::move(rgb));
  }
  VF_ASSIGN_OR_RETURN(auto detections, engine_->Detect(requests, budget));
  requests.clear();
  for (ScaledDetection& s : scaled) s.rgb.release();  // the detector's copies go; their factors stay

  std::vector<FaceResult> results(jobs.size());
  std::vector<FaceToEmbed> chosen;
  chosen.reserve(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto& faces = detections[i];
    MapToFullImage(scaled[i], faces);
    if (observer_ != nullptr) observer_->OnFacesDetected(static_cast<int>(faces.size()));
    const cv::Mat& rgb = images_rgb[i];
    VF_ASSIGN_OR_RETURN(const int index,
                        ChooseFace(faces, jobs[i].choice, rgb, scaled[i].min_face_full, jobs[i].field));
    const FaceDetection& face = faces[static_cast<size_t>(index)];
    results[i].used = UsedFace{index,    face,     static_cast<int>(faces.size()),
                               rgb.cols, rgb.rows, AssessFace(rgb, face, options_.quality.policy)};
    VF_RETURN_IF_ERROR(CheckQuality(jobs[i], results[i].used.quality));
    chosen.push_back(FaceToEmbed{&rgb, face});
    if (jobs[i].enrolment && options_.keep_face_crops) results[i].crop = CutFaceCrop(rgb, face);
  }
  VF_ASSIGN_OR_RETURN(auto embeddings, engine_->Embed(chosen, budget));
  for (size_t i = 0; i < jobs.size(); ++i) results[i].embedding = std::move(embeddings[i]);
  return results;
}

absl::StatusOr<EmbedAnswer> FaceService::Embed(const EmbedQuery& query, const CallBudget& budget) {
  const int limit = options_.limits.max_faces_per_image;
  if (query.max_faces < 0 || query.max_faces > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_faces is ", query.max_faces, "; it must be 0 (the server's limit) to ", limit));
  }
  const int max_faces = query.max_faces == 0 ? limit : query.max_faces;
  VF_ASSIGN_OR_RETURN(const CallSlots::Slot slot, AdmitModelWork());
  VF_ASSIGN_OR_RETURN(const PixelBudget::Reservation held, ReservePixels({query.image}, "image"));
  VF_ASSIGN_OR_RETURN(cv::Mat rgb, Decode(query.image, "image"));
  VF_ASSIGN_OR_RETURN(const DetectorOptions options, DetectionFor(query.min_face_size, "image"));
  const ScaledDetection scaled =
      ScaleForDetection(rgb, options, options_.limits.detect_max_pixels, spec().detector_defaults.min_face_size);
  VF_ASSIGN_OR_RETURN(auto detections, engine_->Detect({DetectRequest{scaled.rgb, scaled.options}}, budget));
  std::vector<FaceDetection>& faces = detections.front();
  MapToFullImage(scaled, faces);
  if (observer_ != nullptr) observer_->OnFacesDetected(static_cast<int>(faces.size()));
  EmbedAnswer answer;
  // Faces come by descending score: the most confident are kept.
  const size_t kept = std::min(faces.size(), static_cast<size_t>(max_faces));
  answer.faces_omitted = static_cast<int>(faces.size() - kept);
  faces.resize(kept);
  std::vector<Embedding> embeddings;
  if (!query.skip_embeddings && !faces.empty()) {
    std::vector<FaceToEmbed> jobs;
    for (const FaceDetection& face : faces) jobs.push_back(FaceToEmbed{&rgb, face});
    VF_ASSIGN_OR_RETURN(embeddings, engine_->Embed(jobs, budget));
  }
  for (size_t i = 0; i < faces.size(); ++i) {
    answer.faces.push_back(EmbeddedFace{faces[i], i < embeddings.size() ? std::move(embeddings[i]) : Embedding{},
                                        AssessFace(rgb, faces[i], options_.quality.policy)});
  }
  answer.image_width = rgb.cols;
  answer.image_height = rgb.rows;
  answer.model_id = spec().model_id;
  return answer;
}

absl::StatusOr<VerifyAnswer> FaceService::Verify(const VerifyQuery& query, const CallBudget& budget) {
  VerifyAnswer answer;
  VF_ASSIGN_OR_RETURN(answer.threshold, Resolve(query.threshold));
  const FaceInput* sides[2] = {&query.a, &query.b};
  const char* names[2] = {"a", "b"};

  // Embeddings of the image and embedding sides; identity sides are compared through the gallery.
  std::vector<float> vectors[2];
  std::shared_ptr<const Collection> collections[2];  // for identity sides
  std::vector<FaceJob> jobs;
  std::vector<int> job_side;
  int identity_sides = 0;
  for (int s = 0; s < 2; ++s) {
    const FaceInput& side = *sides[s];
    switch (side.kind) {
      case FaceInput::Kind::kImage:
        jobs.push_back(FaceJob{side.image.bytes, absl::StrCat(names[s], ".image"), side.image.choice,
                               side.image.min_face_size, side.image.min_quality, false});
        job_side.push_back(s);
        break;
      case FaceInput::Kind::kEmbedding: {
        VF_ASSIGN_OR_RETURN(vectors[s],
                            UnitEmbedding(side.embedding, spec().embedding_dim, absl::StrCat(names[s], ".embedding")));
        break;
      }
      case FaceInput::Kind::kIdentity: {
        VF_RETURN_IF_ERROR(gallery_->CheckIdentityId(side.identity_id, absl::StrCat(names[s], ".identity_id")));
        VF_ASSIGN_OR_RETURN(collections[s], FindGallery(side.gallery, absl::StrCat(names[s], ".gallery")));
        ++identity_sides;
        break;
      }
      case FaceInput::Kind::kNone:
        return absl::InvalidArgumentError(
            absl::StrCat(names[s], " is empty: give an image, an embedding or an identity_id"));
    }
  }
  // Fail fast on an unknown identity before spending compute on the other side.
  for (int s = 0; s < 2; ++s) {
    if (sides[s]->kind == FaceInput::Kind::kIdentity) {
      VF_RETURN_IF_ERROR(Annotate(collections[s]->Get(sides[s]->identity_id).status(), names[s]));
    }
  }
  if (!jobs.empty()) {
    VF_ASSIGN_OR_RETURN(auto faces, EmbedOneFaceEach(jobs, budget));
    for (size_t j = 0; j < jobs.size(); ++j) {
      const int s = job_side[j];
      vectors[s] = std::move(faces[j].embedding);
      (s == 0 ? answer.face_a : answer.face_b) = std::move(faces[j].used);
    }
  }
  if (identity_sides == 2) {
    // Two enrolled identities: their most similar pair of templates.
    VF_ASSIGN_OR_RETURN(const IdentityPairMatch m,
                        collections[0]->CompareIdentities(query.a.identity_id, *collections[1], query.b.identity_id));
    answer.similarity = m.similarity;
    answer.template_a = m.template_a;
    answer.template_b = m.template_b;
  } else if (identity_sides == 1) {
    const int id_side = query.a.kind == FaceInput::Kind::kIdentity ? 0 : 1;
    VF_ASSIGN_OR_RETURN(const IdentityMatch m,
                        collections[id_side]->Compare(vectors[1 - id_side], sides[id_side]->identity_id));
    answer.similarity = m.similarity;
    (id_side == 0 ? answer.template_a : answer.template_b) = m.best_template_id;
  } else {
    answer.similarity = Dot(vectors[0], vectors[1]);
  }
  answer.match = answer.similarity >= answer.threshold.value;
  answer.model_id = spec().model_id;
  return answer;
}

absl::StatusOr<IdentifyAnswer> FaceService::Identify(const IdentifyQuery& query, const CallBudget& budget) {
  const int max_k = options_.limits.max_top_k;
  if (query.top_k < 0 || query.top_k > max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k is ", query.top_k, "; it must be 0 (meaning ", kDefaultTopK, ") to ", max_k));
  }
  const int k = query.top_k == 0 ? kDefaultTopK : query.top_k;
  VF_ASSIGN_OR_RETURN(const auto collection, FindGallery(query.gallery, "gallery"));
  IdentifyAnswer answer;
  answer.gallery = collection->name();
  VF_ASSIGN_OR_RETURN(answer.threshold, Resolve(query.threshold));
  VF_ASSIGN_OR_RETURN(auto faces, EmbedOneFaceEach({FaceJob{query.image.bytes, "image", query.image.choice,
                                                            query.image.min_face_size, query.image.min_quality, false}},
                                                   budget));
  // Cosine similarities are >= -1, so -2 keeps everything.
  const float floor = query.include_below_threshold ? -2.0F : static_cast<float>(answer.threshold.value);
  VF_ASSIGN_OR_RETURN(const auto matches, collection->Identify(faces[0].embedding, k, floor, &answer.search));
  for (const IdentityMatch& m : matches) {
    Candidate c{m.identity_id, m.similarity, m.similarity >= answer.threshold.value, m.best_template_id, {}};
    const auto info = collection->Get(m.identity_id);  // may have been deleted meanwhile
    if (info.ok()) c.metadata = info->record.metadata;
    answer.candidates.push_back(std::move(c));
  }
  answer.model_id = spec().model_id;
  answer.face = std::move(faces[0].used);
  return answer;
}

absl::StatusOr<EnrollAnswer> FaceService::Enroll(const EnrollQuery& query, const CallBudget& budget) {
  VF_RETURN_IF_ERROR(gallery_->CheckIdentityId(query.identity_id, "identity_id"));
  const int n = static_cast<int>(query.images.size());
  if (n == 0) return absl::InvalidArgumentError("images is empty; send at least one image");
  if (n > options_.limits.max_images_per_enroll) {
    return absl::InvalidArgumentError(absl::StrCat("images has ", n, " entries; at most ",
                                                   options_.limits.max_images_per_enroll,
                                                   " per request (use EnrollStream for more)"));
  }
  if (!query.request_id.empty()) {
    VF_RETURN_IF_ERROR(gallery_->CheckIdentityId(query.request_id, "request_id"));
  }
  // An unknown or full gallery refuses before any compute is spent; the gallery's own check under its lock
  // stays the one that counts when enrolments race.
  VF_ASSIGN_OR_RETURN(const auto collection, FindGallery(query.gallery, "gallery"));
  const int64_t held = collection->template_count();
  const int64_t limit = collection->max_templates();
  if (held + n > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "gallery \"", collection->name(), "\" holds ", held, " templates; adding ", n, " would pass ",
        collection->record().max_templates > 0 ? "its own max_templates" : "gallery.max_templates", " (", limit, ")"));
  }
  const FaceChoice choice = query.choice == FaceChoice::kDefault ? FaceChoice::kSingle : query.choice;
  std::vector<FaceJob> jobs;
  jobs.reserve(query.images.size());
  for (int i = 0; i < n; ++i) {
    jobs.push_back(FaceJob{query.images[static_cast<size_t>(i)], absl::StrCat("images[", i, "]"), choice,
                           query.min_face_size, query.min_quality, true});
  }
  VF_ASSIGN_OR_RETURN(auto faces, EmbedOneFaceEach(jobs, budget));
  EnrollCommand command{query.gallery, query.identity_id, query.metadata, {}, query.request_id, {}};
  command.embeddings.reserve(faces.size());
  for (auto& f : faces) {
    command.embeddings.push_back(std::move(f.embedding));
    if (options_.keep_face_crops) command.face_crops.push_back(std::move(f.crop));
  }
  // Past this point the work is done: enrol even if the caller has gone, so that a retry finds it.
  EnrollAnswer answer;
  VF_ASSIGN_OR_RETURN(EnrollOutcome outcome, gallery_->Enroll(command));
  PublishGallerySize();
  answer.template_ids = std::move(outcome.template_ids);
  answer.gallery = outcome.gallery;
  answer.replayed = outcome.replayed;
  answer.identity_id = query.identity_id;
  for (auto& f : faces) answer.faces.push_back(std::move(f.used));
  const auto info = collection->Get(query.identity_id);  // a concurrent delete may have removed it again
  answer.template_count = static_cast<int>(info.ok() ? info->template_ids.size() : answer.template_ids.size());
  return answer;
}

absl::StatusOr<DeleteAnswer> FaceService::Delete(const DeleteQuery& query) {
  VF_RETURN_IF_ERROR(gallery_->CheckGalleryName(query.identity.gallery, "gallery"));
  VF_RETURN_IF_ERROR(gallery_->CheckIdentityId(query.identity.identity_id, "identity_id"));
  if (!query.request_id.empty()) {
    VF_RETURN_IF_ERROR(gallery_->CheckIdentityId(query.request_id, "request_id"));
  }
  const auto deleted = gallery_->Delete(query.identity.gallery, query.identity.identity_id, query.request_id);
  PublishGallerySize();
  VF_RETURN_IF_ERROR(deleted.status());
  return DeleteAnswer{query.identity.identity_id, static_cast<int>(deleted->templates_deleted), deleted->gallery,
                      deleted->replayed};
}

absl::StatusOr<IdentityInfo> FaceService::Get(const IdentityRef& identity) const {
  VF_RETURN_IF_ERROR(gallery_->CheckIdentityId(identity.identity_id, "identity_id"));
  VF_ASSIGN_OR_RETURN(const auto collection, FindGallery(identity.gallery, "gallery"));
  return collection->Get(identity.identity_id);
}

absl::StatusOr<ListAnswer> FaceService::List(const std::string& gallery, int page_size,
                                             const std::string& page_token) const {
  const int max = options_.limits.max_page_size;
  if (page_size < 0 || page_size > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size is ", page_size, "; it must be 0 (meaning ", kDefaultPageSize, ") to ", max));
  }
  VF_ASSIGN_OR_RETURN(const auto collection, FindGallery(gallery, "gallery"));
  ListAnswer answer;
  VF_ASSIGN_OR_RETURN(answer.page, collection->List(page_size == 0 ? kDefaultPageSize : page_size, page_token));
  answer.total_identities = collection->identity_count();
  return answer;
}

absl::StatusOr<GallerySummary> FaceService::CreateGallery(const std::string& name, int64_t max_templates) {
  auto created = gallery_->CreateGallery(name, max_templates);
  PublishGallerySize();
  return created;
}

std::vector<GallerySummary> FaceService::ListGalleries() const { return gallery_->ListGalleries(); }

absl::StatusOr<GallerySummary> FaceService::DeleteGallery(const std::string& name) {
  auto deleted = gallery_->DeleteGallery(name);
  PublishGallerySize();
  return deleted;
}

absl::StatusOr<GalleryReportAnswer> FaceService::Report(const GalleryReportQuery& query) const {
  constexpr int64_t kMaxSampledTemplates = 200000;
  constexpr int kMaxBins = 1000;
  constexpr size_t kMaxTargets = 10;
  VF_ASSIGN_OR_RETURN(const auto collection, FindGallery(query.gallery, "gallery"));
  GalleryReportOptions options;
  if (query.max_templates < 0 || query.max_templates > kMaxSampledTemplates) {
    return absl::InvalidArgumentError(absl::StrCat("max_templates is ", query.max_templates, "; it must be 0 (meaning ",
                                                   options.max_templates, ") to ", kMaxSampledTemplates));
  }
  if (query.histogram_bins < 0 || query.histogram_bins > kMaxBins) {
    return absl::InvalidArgumentError(absl::StrCat("histogram_bins is ", query.histogram_bins,
                                                   "; it must be 0 (meaning ", options.histogram_bins, ") to ",
                                                   kMaxBins));
  }
  if (query.target_fars.size() > kMaxTargets) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_fars has ", query.target_fars.size(), " entries; at most ", kMaxTargets));
  }
  for (size_t i = 0; i < query.target_fars.size(); ++i) {
    const double far = query.target_fars[i];
    if (!(far > 0 && far < 1)) {
      return absl::InvalidArgumentError(absl::StrCat("target_fars[", i, "] is ", far, "; it must be in (0, 1)"));
    }
  }
  if (query.max_templates > 0) options.max_templates = query.max_templates;
  if (query.seed != 0) options.seed = query.seed;
  if (query.histogram_bins > 0) options.histogram_bins = query.histogram_bins;
  if (!query.target_fars.empty()) options.target_fars = query.target_fars;
  GalleryReportAnswer answer;
  VF_ASSIGN_OR_RETURN(const Threshold in_force, Resolve(ThresholdChoice{}));
  std::vector<std::pair<std::string, double>> thresholds = {{"in force", in_force.value}};
  for (const auto& [name, value] : spec().thresholds) thresholds.emplace_back(name, value);
  VF_ASSIGN_OR_RETURN(answer.report, BuildGalleryReport(*collection, thresholds, options));
  answer.in_force_source = in_force.source;
  answer.model_id = spec().model_id;
  return answer;
}

ServiceInfo FaceService::Info() const {
  // What a request without override gets now: a gallery-calibrated threshold replaces the bundle's once the
  // gallery supports it.
  const absl::StatusOr<Threshold> in_force = Resolve(ThresholdChoice{});
  return ServiceInfo{&spec(),
                     in_force.ok() ? *in_force : default_threshold_,
                     engine_->device(),
                     gallery_->identity_count(),
                     gallery_->template_count(),
                     gallery_->gallery_count(),
                     follower_ != nullptr ? follower_->freshness() : UnsharedFreshness(*gallery_)};
}

}  // namespace veriface
