#include "server/translate.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace veriface::server {
namespace {

absl::StatusOr<FaceChoice> ChoiceFromProto(v1::FaceSelection selection, const std::string& field) {
  switch (selection) {
    case v1::FACE_SELECTION_UNSPECIFIED:
      return FaceChoice::kDefault;
    case v1::FACE_SELECTION_LARGEST:
      return FaceChoice::kLargest;
    case v1::FACE_SELECTION_CENTRAL:
      return FaceChoice::kCentral;
    case v1::FACE_SELECTION_HIGHEST_SCORE:
      return FaceChoice::kHighestScore;
    case v1::FACE_SELECTION_SINGLE:
      return FaceChoice::kSingle;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown face_selection ", static_cast<int>(selection)));
}

absl::StatusOr<QualityLevel> LevelFromProto(v1::QualityLevel level, const std::string& field) {
  switch (level) {
    case v1::QUALITY_LEVEL_UNSPECIFIED:
      return QualityLevel::kUnspecified;
    case v1::QUALITY_LEVEL_LOW:
      return QualityLevel::kLow;
    case v1::QUALITY_LEVEL_MEDIUM:
      return QualityLevel::kMedium;
    case v1::QUALITY_LEVEL_HIGH:
      return QualityLevel::kHigh;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown quality level ", static_cast<int>(level)));
}

v1::QualityLevel LevelToProto(QualityLevel level) {
  switch (level) {
    case QualityLevel::kLow:
      return v1::QUALITY_LEVEL_LOW;
    case QualityLevel::kMedium:
      return v1::QUALITY_LEVEL_MEDIUM;
    case QualityLevel::kHigh:
      return v1::QUALITY_LEVEL_HIGH;
    case QualityLevel::kUnspecified:
      break;
  }
  return v1::QUALITY_LEVEL_UNSPECIFIED;
}

v1::QualityReason ReasonToProto(QualityReason reason) {
  switch (reason) {
    case QualityReason::kSmallFace:
      return v1::SMALL_FACE;
    case QualityReason::kLowSharpness:
      return v1::LOW_SHARPNESS;
    case QualityReason::kExtremePose:
      return v1::EXTREME_POSE;
    case QualityReason::kLowBrightness:
      return v1::LOW_BRIGHTNESS;
    case QualityReason::kHighBrightness:
      return v1::HIGH_BRIGHTNESS;
    case QualityReason::kLowDetectorScore:
      return v1::LOW_DETECTOR_SCORE;
  }
  return v1::QUALITY_REASON_UNSPECIFIED;
}

void QualityToProto(const FaceQuality& quality, v1::FaceQuality* out) {
  out->set_level(LevelToProto(quality.level));
  for (const QualityIssue& issue : quality.issues) {
    v1::QualityIssue* i = out->add_issues();
    i->set_reason(ReasonToProto(issue.reason));
    i->set_level(LevelToProto(issue.level));
  }
  const QualityMeasures& m = quality.measures;
  out->set_interocular_distance(static_cast<float>(m.interocular_px));
  out->set_sharpness(static_cast<float>(m.sharpness));
  out->set_yaw(static_cast<float>(m.yaw_deg));
  out->set_pitch(static_cast<float>(m.pitch_deg));
  out->set_roll(static_cast<float>(m.roll_deg));
  out->set_brightness(static_cast<float>(m.brightness));
  out->set_detector_score(static_cast<float>(m.detector_score));
}

absl::StatusOr<ImageInput> ImageFromProto(const std::string& bytes, v1::FaceSelection selection,
                                          const v1::DetectionOptions& detection, v1::QualityLevel min_quality,
                                          const std::string& field, const std::string& quality_field) {
  VF_ASSIGN_OR_RETURN(const FaceChoice choice, ChoiceFromProto(selection, field));
  VF_ASSIGN_OR_RETURN(const QualityLevel level, LevelFromProto(min_quality, quality_field));
  return ImageInput{bytes, choice, detection.min_face_size(), level};
}

void RatesToProto(const RateEstimate& rate, v1::RateEstimate* out) {
  out->set_rate(rate.rate);
  out->set_errors(rate.errors);
  out->set_pairs(rate.pairs);
  out->set_low(rate.low);
  out->set_high(rate.high);
}

ThresholdChoice ThresholdFromProto(const v1::ThresholdOverride& t) {
  ThresholdChoice out;
  switch (t.choice_case()) {
    case v1::ThresholdOverride::kThreshold:
      out.kind = ThresholdChoice::Kind::kValue;
      out.value = t.threshold();
      break;
    case v1::ThresholdOverride::kOperatingPoint:
      out.kind = ThresholdChoice::Kind::kOperatingPoint;
      out.operating_point = t.operating_point();
      break;
    case v1::ThresholdOverride::CHOICE_NOT_SET:
      break;
  }
  return out;
}

absl::StatusOr<FaceInput> SideFromProto(const v1::FaceInput& side, const std::string& name) {
  FaceInput out;
  switch (side.source_case()) {
    case v1::FaceInput::kImage: {
      out.kind = FaceInput::Kind::kImage;
      VF_ASSIGN_OR_RETURN(out.image,
                          ImageFromProto(side.image(), side.face_selection(), side.detection(), side.min_quality(),
                                         absl::StrCat(name, ".image"), absl::StrCat(name, ".min_quality")));
      break;
    }
    case v1::FaceInput::kEmbedding:
      out.kind = FaceInput::Kind::kEmbedding;
      out.embedding.assign(side.embedding().values().begin(), side.embedding().values().end());
      break;
    case v1::FaceInput::kIdentityId:
      out.kind = FaceInput::Kind::kIdentity;
      out.identity_id = side.identity_id();
      out.gallery = side.gallery();
      break;
    case v1::FaceInput::SOURCE_NOT_SET:
      break;
  }
  return out;
}

void FaceToProto(const FaceDetection& face, const FaceQuality& quality, v1::Face* out) {
  out->mutable_box()->set_x1(face.box.x1);
  out->mutable_box()->set_y1(face.box.y1);
  out->mutable_box()->set_x2(face.box.x2);
  out->mutable_box()->set_y2(face.box.y2);
  out->set_score(face.score);
  for (const auto& p : face.landmarks) {
    auto* point = out->add_landmarks();
    point->set_x(p.x);
    point->set_y(p.y);
  }
  QualityToProto(quality, out->mutable_quality());
}

void UsedFaceToProto(const UsedFace& used, v1::UsedFace* out) {
  out->set_index(used.index);
  FaceToProto(used.face, used.quality, out->mutable_face());
  out->set_faces_detected(used.faces_detected);
  out->set_image_width(used.image_width);
  out->set_image_height(used.image_height);
}

absl::Status JsonToStruct(const nlohmann::json& j, google::protobuf::Struct* out) {
  if (!j.is_object()) return absl::OkStatus();
  const auto s = google::protobuf::util::JsonStringToMessage(j.dump(), out);
  if (!s.ok()) return absl::InternalError(absl::StrCat("cannot convert model.json to a Struct: ", s.ToString()));
  return absl::OkStatus();
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl's and gRPC's codes are the same numbers (both are google.rpc.Code).
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

CallBudget BudgetOf(grpc::ServerContext* context) {
  using Clock = std::chrono::steady_clock;
  CallBudget budget;
  const auto deadline = context->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    const auto left = deadline - std::chrono::system_clock::now();
    budget.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(left);
  }
  budget.cancelled = [context] { return context->IsCancelled(); };
  return budget;
}

EmbedQuery FromProto(const v1::EmbedRequest& request) {
  return EmbedQuery{request.image(), request.detection().min_face_size(), request.max_faces(),
                    request.skip_embeddings()};
}

absl::StatusOr<VerifyQuery> FromProto(const v1::VerifyRequest& request) {
  VerifyQuery query;
  VF_ASSIGN_OR_RETURN(query.a, SideFromProto(request.a(), "a"));
  VF_ASSIGN_OR_RETURN(query.b, SideFromProto(request.b(), "b"));
  query.threshold = ThresholdFromProto(request.threshold());
  return query;
}

absl::StatusOr<IdentifyQuery> FromProto(const v1::IdentifyRequest& request) {
  IdentifyQuery query;
  query.gallery = request.gallery();
  VF_ASSIGN_OR_RETURN(query.image, ImageFromProto(request.image(), request.face_selection(), request.detection(),
                                                  request.min_quality(), "image", "min_quality"));
  query.top_k = request.top_k();
  query.threshold = ThresholdFromProto(request.threshold());
  query.include_below_threshold = request.include_below_threshold();
  return query;
}

absl::StatusOr<EnrollQuery> FromProto(const v1::EnrollRequest& request) {
  EnrollQuery query;
  query.gallery = request.gallery();
  query.request_id = request.request_id();
  query.identity_id = request.identity_id();
  query.metadata.insert(request.metadata().begin(), request.metadata().end());
  query.images.reserve(static_cast<size_t>(request.images_size()));
  for (const std::string& image : request.images()) query.images.emplace_back(image);
  VF_ASSIGN_OR_RETURN(query.choice, ChoiceFromProto(request.face_selection(), "face_selection"));
  query.min_face_size = request.detection().min_face_size();
  VF_ASSIGN_OR_RETURN(query.min_quality, LevelFromProto(request.min_quality(), "min_quality"));
  return query;
}

GalleryReportQuery FromProto(const v1::GalleryReportRequest& request) {
  GalleryReportQuery query;
  query.gallery = request.gallery();
  query.target_fars.assign(request.target_fars().begin(), request.target_fars().end());
  query.max_templates = request.max_templates();
  query.seed = request.seed();
  query.histogram_bins = request.histogram_bins();
  return query;
}

void ToProto(const GalleryReportAnswer& answer, v1::GalleryReport* out) {
  const GalleryReport& r = answer.report;
  out->set_gallery(r.gallery);
  out->set_model_id(answer.model_id);
  out->set_identities(r.identities);
  out->set_templates(r.templates);
  out->set_sampled_identities(r.sampled_identities);
  out->set_sampled_templates(r.sampled_templates);
  out->set_identities_with_genuine_pairs(r.identities_with_genuine_pairs);
  out->set_genuine_pairs(r.genuine_pairs);
  out->set_impostor_pairs(r.impostor_pairs);
  out->set_genuine_sampled(r.genuine_sampled);
  out->set_impostor_sampled(r.impostor_sampled);
  for (size_t i = 0; i < r.thresholds.size(); ++i) {
    const ThresholdRates& t = r.thresholds[i];
    v1::ThresholdRates* o = out->add_thresholds();
    o->set_name(t.name);
    o->set_threshold(t.threshold);
    RatesToProto(t.far, o->mutable_far());
    RatesToProto(t.frr, o->mutable_frr());
    if (i == 0) o->set_source(answer.in_force_source);
  }
  for (const FarTargetRates& t : r.far_targets) {
    v1::FarTargetRates* o = out->add_far_targets();
    o->set_target_far(t.target_far);
    o->set_threshold(t.threshold);
    RatesToProto(t.far, o->mutable_far());
    RatesToProto(t.frr, o->mutable_frr());
    o->set_reliable(t.reliable);
    o->set_impostor_pairs_needed(t.impostor_pairs_needed);
  }
  v1::ScoreHistogram* h = out->mutable_histogram();
  h->set_min(r.histogram.min);
  h->set_max(r.histogram.max);
  h->mutable_genuine()->Add(r.histogram.genuine.begin(), r.histogram.genuine.end());
  h->mutable_impostor()->Add(r.histogram.impostor.begin(), r.histogram.impostor.end());
  for (const std::string& note : r.notes) out->add_notes(note);
}

void ToProto(const EmbedAnswer& answer, v1::EmbedResponse* out) {
  for (const EmbeddedFace& f : answer.faces) {
    v1::Face* face = out->add_faces();
    FaceToProto(f.face, f.quality, face);
    face->mutable_embedding()->Add(f.embedding.begin(), f.embedding.end());
  }
  out->set_faces_omitted(answer.faces_omitted);
  out->set_image_width(answer.image_width);
  out->set_image_height(answer.image_height);
  out->set_model_id(answer.model_id);
}

void ToProto(const VerifyAnswer& answer, v1::VerifyResponse* out) {
  out->set_similarity(answer.similarity);
  out->set_match(answer.match);
  out->set_threshold(answer.threshold.value);
  out->set_threshold_source(answer.threshold.source);
  out->set_model_id(answer.model_id);
  if (answer.face_a) UsedFaceToProto(*answer.face_a, out->mutable_face_a());
  if (answer.face_b) UsedFaceToProto(*answer.face_b, out->mutable_face_b());
  out->set_template_id_a(answer.template_a);
  out->set_template_id_b(answer.template_b);
}

void ToProto(const IdentifyAnswer& answer, v1::IdentifyResponse* out) {
  for (const Candidate& c : answer.candidates) {
    v1::IdentityMatch* m = out->add_matches();
    m->set_identity_id(c.identity_id);
    m->set_similarity(c.similarity);
    m->set_match(c.match);
    m->set_template_id(c.template_id);
    m->mutable_metadata()->insert(c.metadata.begin(), c.metadata.end());
  }
  out->set_threshold(answer.threshold.value);
  out->set_threshold_source(answer.threshold.source);
  out->set_model_id(answer.model_id);
  UsedFaceToProto(answer.face, out->mutable_face());
  out->set_gallery(answer.gallery);
  out->set_index(answer.search.index);
  out->set_exact(answer.search.exact);
}

void ToProto(const EnrollAnswer& answer, v1::EnrollResponse* out) {
  out->set_identity_id(answer.identity_id);
  for (const auto& id : answer.template_ids) out->add_template_ids(id);
  out->set_template_count(answer.template_count);
  for (const UsedFace& f : answer.faces) UsedFaceToProto(f, out->add_faces());
  out->set_gallery(answer.gallery);
  out->set_replayed(answer.replayed);
}

DeleteQuery FromProto(const v1::DeleteIdentityRequest& request) {
  return DeleteQuery{IdentityRef{request.gallery(), request.identity_id()}, request.request_id()};
}

IdentityRef FromProto(const v1::GetIdentityRequest& request) {
  return IdentityRef{request.gallery(), request.identity_id()};
}

void ToProto(const DeleteAnswer& answer, v1::DeleteIdentityResponse* out) {
  out->set_identity_id(answer.identity_id);
  out->set_templates_deleted(answer.templates_deleted);
  out->set_replayed(answer.replayed);
  out->set_gallery(answer.gallery);
}

void ToProto(const GallerySummary& summary, v1::GalleryInfo* out) {
  out->set_name(summary.record.name);
  out->set_identities(summary.identities);
  out->set_templates(summary.templates);
  out->set_max_templates(summary.max_templates);
  out->set_created_unix_ms(summary.record.created_unix_ms);
  out->set_index(summary.index.index);
  out->set_index_exact(summary.index.exact);
  out->set_index_memory_bytes(summary.index_memory_bytes);
}

void ToProto(const std::vector<GallerySummary>& galleries, v1::ListGalleriesResponse* out) {
  for (const GallerySummary& g : galleries) ToProto(g, out->add_galleries());
}

void ToProto(const IdentityInfo& info, v1::Identity* out) {
  out->set_identity_id(info.record.identity_id);
  out->mutable_metadata()->insert(info.record.metadata.begin(), info.record.metadata.end());
  for (const auto& t : info.template_ids) out->add_template_ids(t);
  out->set_created_unix_ms(info.record.created_unix_ms);
  out->set_updated_unix_ms(info.record.updated_unix_ms);
  out->set_gallery(info.gallery);
  out->set_templates_without_face_crop(static_cast<int32_t>(info.templates_without_face_crop));
}

void ToProto(const ListAnswer& answer, v1::ListIdentitiesResponse* out) {
  for (const IdentityInfo& info : answer.page.identities) ToProto(info, out->add_identities());
  out->set_next_page_token(answer.page.next_page_token);
  out->set_total_identities(answer.total_identities);
}

absl::Status ToProto(const ServiceInfo& info, v1::ModelInfo* out) {
  const ModelSpec& spec = *info.spec;
  out->set_model_id(spec.model_id);
  out->set_description(spec.description);
  out->set_embedding_dim(static_cast<int>(spec.embedding_dim));
  out->mutable_thresholds()->insert(spec.thresholds.begin(), spec.thresholds.end());
  out->set_default_operating_point(spec.default_operating_point);
  out->set_default_threshold(info.default_threshold.value);
  out->set_default_threshold_source(info.default_threshold.source);
  VF_RETURN_IF_ERROR(JsonToStruct(spec.accuracy, out->mutable_accuracy()));
  VF_RETURN_IF_ERROR(JsonToStruct(spec.provenance, out->mutable_provenance()));
  out->set_default_min_face_size(spec.detector_defaults.min_face_size);
  out->set_device(info.device);
  out->set_gallery_identities(info.gallery_identities);
  out->set_gallery_templates(info.gallery_templates);
  out->set_gallery_store(info.freshness.store);
  out->set_gallery_may_be_stale(info.freshness.may_be_stale);
  out->set_gallery_seconds_since_sync(info.freshness.seconds_since_sync);
  out->set_galleries(info.galleries);
  return absl::OkStatus();
}

}  // namespace veriface::server
