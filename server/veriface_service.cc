#include "server/veriface_service.h"

#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"
#include "core/gallery/gallery.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "core/image/decode.h"
#include "server/version.h"

namespace veriface::server {

using Clock = std::chrono::steady_clock;

// The threshold a decision uses, and where it came from (reported to the caller).
struct Threshold {
  double value = 0;
  std::string source;
};

struct VerifaceService::Backend {
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<Gallery> gallery;
  Threshold default_threshold;
};

namespace {

using Backend = VerifaceService::Backend;

constexpr int kDefaultTopK = 5;
constexpr int kDefaultPageSize = 100;

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// Prefixes a status's message with the request field it is about, keeping its code.
absl::Status Annotate(const absl::Status& s, const std::string& field) {
  if (s.ok() || field.empty()) return s;
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

CallBudget BudgetOf(grpc::ServerContext* context) {
  CallBudget budget;
  const auto deadline = context->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    const auto left = deadline - std::chrono::system_clock::now();
    budget.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(left);
  }
  budget.cancelled = [context] { return context->IsCancelled(); };
  return budget;
}

absl::Status CheckId(const std::string& id, const std::string& field) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  if (id.size() > 256) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", id.size(), " bytes long; at most 256 are allowed"));
  }
  for (const char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(field, " contains control character 0x", absl::Hex(u)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<cv::Mat> Decode(const std::string& bytes, const std::string& field, const ServerConfig& config) {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": the image is empty (0 bytes)"));
  DecodeLimits limits;
  limits.max_bytes = config.max_image_bytes;
  limits.max_pixels = config.max_image_pixels;
  auto rgb = DecodeImage(bytes, limits);
  if (!rgb.ok()) {
    // An image over the size limits is the caller's to fix, not a sign of an overloaded server.
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", rgb.status().message()));
  }
  return rgb;
}

absl::StatusOr<DetectorOptions> DetectionFor(const v1::DetectionOptions& request, const Backend& backend,
                                             const ServerConfig& config, const std::string& field) {
  DetectorOptions options = backend.pipeline->spec().detector_defaults;
  const int min_face = request.min_face_size();
  if (min_face != 0) {
    if (min_face < config.min_face_size_floor || min_face > 10000) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".detection.min_face_size is ", min_face,
                                                     "; it must be 0 (the model's default, ", options.min_face_size,
                                                     ") or between ", config.min_face_size_floor, " and 10000"));
    }
    options.min_face_size = min_face;
  }
  return options;
}

absl::StatusOr<Threshold> ThresholdFor(const v1::ThresholdOverride& request, const Backend& backend) {
  switch (request.choice_case()) {
    case v1::ThresholdOverride::kThreshold: {
      const double t = request.threshold();
      if (!(t >= -1 && t <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat("threshold.threshold is ", t, "; it must be in [-1, 1]"));
      }
      return Threshold{t, "request"};
    }
    case v1::ThresholdOverride::kOperatingPoint: {
      const auto& points = backend.pipeline->spec().thresholds;
      const auto it = points.find(request.operating_point());
      if (it == points.end()) {
        std::vector<std::string> names;
        for (const auto& [name, value] : points) names.push_back(name);
        return absl::InvalidArgumentError(
            absl::StrCat("threshold.operating_point '", request.operating_point(), "' is not one of the model's (",
                         names.empty() ? "it has none calibrated" : absl::StrJoin(names, ", "), ")"));
      }
      return Threshold{it->second, it->first};
    }
    case v1::ThresholdOverride::CHOICE_NOT_SET:
      break;
  }
  return backend.default_threshold;
}

void FillFace(const FaceDetection& face, v1::Face* out) {
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
}

// One image of a request that needs exactly one face from it.
struct FaceJob {
  const std::string* bytes = nullptr;
  std::string field;  // "a.image", "images[3]", ...
  v1::FaceSelection selection = v1::FACE_SELECTION_UNSPECIFIED;
  const v1::DetectionOptions* detection = nullptr;
};

struct FaceResult {
  std::vector<float> embedding;
  v1::UsedFace used;
};

absl::StatusOr<int> ChooseFace(const std::vector<FaceDetection>& faces, v1::FaceSelection selection, const cv::Mat& rgb,
                               const DetectorOptions& options, const std::string& field) {
  if (faces.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(field, ": no face found in the ", rgb.cols, "x", rgb.rows,
                                                      " image (faces smaller than ", options.min_face_size,
                                                      " pixels are not searched for)"));
  }
  FaceSelection rule = FaceSelection::kLargest;
  switch (selection) {
    case v1::FACE_SELECTION_SINGLE:
      if (faces.size() > 1) {
        return absl::FailedPreconditionError(
            absl::StrCat(field, ": ", faces.size(),
                         " faces found where exactly one is needed; send a photo of one person or set face_selection "
                         "(LARGEST, CENTRAL or HIGHEST_SCORE) to choose one"));
      }
      return 0;
    case v1::FACE_SELECTION_CENTRAL:
      rule = FaceSelection::kCentral;
      break;
    case v1::FACE_SELECTION_HIGHEST_SCORE:
      rule = FaceSelection::kHighestScore;
      break;
    case v1::FACE_SELECTION_LARGEST:
    case v1::FACE_SELECTION_UNSPECIFIED:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(field, ": unknown face_selection ", static_cast<int>(selection)));
  }
  return SelectFace(faces, rule, rgb.cols, rgb.rows);
}

// Decodes each job's image, detects (all images in one go, so that they can share batches), chooses one
// face per image, and embeds the chosen faces together.
absl::StatusOr<std::vector<FaceResult>> EmbedOneFaceEach(const std::vector<FaceJob>& jobs, Backend& backend,
                                                         const ServerConfig& config, Metrics& metrics,
                                                         const CallBudget& budget) {
  VF_RETURN_IF_ERROR(backend.pipeline->CheckCapacity());
  std::vector<DetectRequest> requests;
  requests.reserve(jobs.size());
  for (const FaceJob& job : jobs) {
    VF_ASSIGN_OR_RETURN(cv::Mat rgb, Decode(*job.bytes, job.field, config));
    VF_ASSIGN_OR_RETURN(DetectorOptions options, DetectionFor(*job.detection, backend, config, job.field));
    requests.push_back(DetectRequest{std::move(rgb), options});
  }
  VF_ASSIGN_OR_RETURN(const auto detections, backend.pipeline->Detect(requests, budget));

  std::vector<FaceResult> results(jobs.size());
  std::vector<const cv::Mat*> images;
  std::vector<FaceDetection> chosen;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const auto& faces = detections[i];
    metrics.ObserveFaces(static_cast<int>(faces.size()));
    VF_ASSIGN_OR_RETURN(const int index,
                        ChooseFace(faces, jobs[i].selection, requests[i].rgb, requests[i].options, jobs[i].field));
    v1::UsedFace& used = results[i].used;
    used.set_index(index);
    FillFace(faces[static_cast<size_t>(index)], used.mutable_face());
    used.set_faces_detected(static_cast<int>(faces.size()));
    used.set_image_width(requests[i].rgb.cols);
    used.set_image_height(requests[i].rgb.rows);
    images.push_back(&requests[i].rgb);
    chosen.push_back(faces[static_cast<size_t>(index)]);
  }
  VF_ASSIGN_OR_RETURN(auto embeddings, backend.pipeline->Embed(images, chosen, budget));
  for (size_t i = 0; i < jobs.size(); ++i) results[i].embedding = std::move(embeddings[i]);
  return results;
}

float Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

absl::StatusOr<std::vector<float>> UnitEmbedding(const v1::Embedding& e, int64_t dim, const std::string& field) {
  if (static_cast<int64_t>(e.values_size()) != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " has ", e.values_size(), " values; the model's embeddings have ", dim));
  }
  double norm2 = 0;
  for (const float v : e.values()) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError(absl::StrCat(field, " contains a non-finite value"));
    norm2 += static_cast<double>(v) * v;
  }
  if (norm2 < 1e-12) return absl::InvalidArgumentError(absl::StrCat(field, " is all zeros"));
  const double inv = 1.0 / std::sqrt(norm2);
  std::vector<float> out;
  out.reserve(e.values_size());
  for (const float v : e.values()) out.push_back(static_cast<float>(v * inv));
  return out;
}

void FillIdentity(const IdentityInfo& info, v1::Identity* out) {
  out->set_identity_id(info.record.identity_id);
  out->mutable_metadata()->insert(info.record.metadata.begin(), info.record.metadata.end());
  for (const auto& t : info.template_ids) out->add_template_ids(t);
  out->set_created_unix_ms(info.record.created_unix_ms);
  out->set_updated_unix_ms(info.record.updated_unix_ms);
}

absl::Status JsonToStruct(const nlohmann::json& j, google::protobuf::Struct* out) {
  if (!j.is_object()) return absl::OkStatus();
  const auto s = google::protobuf::util::JsonStringToMessage(j.dump(), out);
  if (!s.ok()) return absl::InternalError(absl::StrCat("cannot convert model.json to a Struct: ", s.ToString()));
  return absl::OkStatus();
}

// A small blocking queue of in-flight stream items, bounded so that a fast sender cannot make the server
// hold more than `capacity` items at once.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}
  void Push(T item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(item));
    not_empty_.notify_one();
  }
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

// The whole of one enrolment: checked, every image embedded, then committed to the gallery at once.
absl::Status EnrollOne(const v1::EnrollRequest& request, Backend& backend, const ServerConfig& config, Metrics& metrics,
                       const CallBudget& budget, v1::EnrollResponse* response) {
  VF_RETURN_IF_ERROR(CheckId(request.identity_id(), "identity_id"));
  if (request.images_size() == 0) return absl::InvalidArgumentError("images is empty; send at least one image");
  if (request.images_size() > config.max_images_per_enroll) {
    return absl::InvalidArgumentError(absl::StrCat("images has ", request.images_size(), " entries; at most ",
                                                   config.max_images_per_enroll,
                                                   " per request (use EnrollStream for more)"));
  }
  // A full gallery refuses before any compute is spent; the gallery's own check under its lock stays
  // the one that counts when enrolments race.
  const int64_t held = backend.gallery->template_count();
  if (held + request.images_size() > config.max_templates) {
    return absl::ResourceExhaustedError(absl::StrCat("the gallery holds ", held, " templates; adding ",
                                                     request.images_size(), " would pass gallery.max_templates (",
                                                     config.max_templates, ")"));
  }
  const v1::FaceSelection selection =
      request.face_selection() == v1::FACE_SELECTION_UNSPECIFIED ? v1::FACE_SELECTION_SINGLE : request.face_selection();
  std::vector<FaceJob> jobs;
  for (int i = 0; i < request.images_size(); ++i) {
    jobs.push_back(FaceJob{&request.images(i), absl::StrCat("images[", i, "]"), selection, &request.detection()});
  }
  VF_ASSIGN_OR_RETURN(auto faces, EmbedOneFaceEach(jobs, backend, config, metrics, budget));
  std::vector<std::vector<float>> embeddings;
  for (auto& f : faces) embeddings.push_back(std::move(f.embedding));
  const std::map<std::string, std::string> metadata(request.metadata().begin(), request.metadata().end());
  // Past this point the work is done: enrol even if the caller has gone, so that a retry finds it.
  VF_ASSIGN_OR_RETURN(const auto template_ids, backend.gallery->Enroll(request.identity_id(), metadata, embeddings));
  metrics.SetGallerySize(backend.gallery->identity_count(), backend.gallery->template_count());
  response->set_identity_id(request.identity_id());
  for (const auto& id : template_ids) response->add_template_ids(id);
  for (auto& f : faces) *response->add_faces() = std::move(f.used);
  const auto info = backend.gallery->Get(request.identity_id());
  response->set_template_count(info.ok() ? static_cast<int>(info->template_ids.size())
                                         : static_cast<int>(template_ids.size()));
  return absl::OkStatus();
}

}  // namespace

VerifaceService::VerifaceService(ServerConfig config, std::shared_ptr<Metrics> metrics,
                                 std::shared_ptr<const CallGuard> guard)
    : config_(std::move(config)), metrics_(std::move(metrics)), guard_(std::move(guard)) {}

VerifaceService::~VerifaceService() = default;

absl::Status VerifaceService::Load() {
  auto backend = std::make_shared<Backend>();
  VF_ASSIGN_OR_RETURN(backend->pipeline, Pipeline::Load(config_, metrics_));
  const ModelSpec& spec = backend->pipeline->spec();
  const auto threshold = spec.DefaultThreshold();
  if (threshold.ok()) {
    backend->default_threshold = Threshold{*threshold, spec.default_operating_point};
  } else {
    backend->default_threshold = Threshold{config_.fallback_threshold, "server-fallback"};
    spdlog::warn("{}; using model.fallback_threshold {}", std::string(threshold.status().message()),
                 config_.fallback_threshold);
  }
  VF_ASSIGN_OR_RETURN(auto store, SqliteGalleryStore::Open(config_.gallery_path));
  GalleryLimits limits;
  limits.max_templates = config_.max_templates;
  limits.max_templates_per_identity = config_.max_templates_per_identity;
  limits.max_page_size = config_.max_page_size;
  limits.max_k = config_.max_top_k;
  auto gallery = Gallery::Open(std::move(store), spec.model_id, spec.embedding_dim, limits);
  if (!gallery.ok()) {
    return Annotate(gallery.status(), absl::StrCat("gallery '", config_.gallery_path, "'"));
  }
  backend->gallery = *std::move(gallery);
  metrics_->SetModelInfo(spec.model_id, spec.embedding_dim, backend->pipeline->device());
  PublishGallerySize(*backend);
  spdlog::info("model {} on {} ({}-D, threshold {} from {}); gallery '{}': {} identities, {} templates", spec.model_id,
               backend->pipeline->device(), spec.embedding_dim, backend->default_threshold.value,
               backend->default_threshold.source, config_.gallery_path, backend->gallery->identity_count(),
               backend->gallery->template_count());
  std::atomic_store(&backend_, std::move(backend));
  return absl::OkStatus();
}

void VerifaceService::Shutdown() {
  const auto backend = std::atomic_load(&backend_);
  if (backend != nullptr) backend->pipeline->Shutdown();
}

void VerifaceService::PublishGallerySize(const Backend& backend) {
  metrics_->SetGallerySize(backend.gallery->identity_count(), backend.gallery->template_count());
}

template <typename Fn>
grpc::Status VerifaceService::Handle(Rpc rpc, grpc::ServerContext* context, Fn&& fn) {
  const auto start = Clock::now();
  grpc::Status status = guard_->Admit(*context, rpc);
  if (status.ok()) {
    const std::shared_ptr<Backend> backend = std::atomic_load(&backend_);
    if (backend == nullptr) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the server is still loading its model and gallery; retry when grpc.health.v1 says "
                            "SERVING");
    } else {
      try {
        status = ToGrpc(fn(*backend, BudgetOf(context)));
      } catch (const std::exception& e) {
        status = grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat(RpcName(rpc), " failed: ", e.what()));
      }
      if (rpc == Rpc::kDeleteIdentity) PublishGallerySize(*backend);
    }
  }
  metrics_->ObserveRpc(RpcName(rpc), status.error_code(), Clock::now() - start);
  if (status.error_code() == grpc::StatusCode::INTERNAL) {
    spdlog::error("{} from {}: {}", RpcName(rpc), context->peer(), status.error_message());
  } else if (!status.ok()) {
    spdlog::debug("{} from {}: {} {}", RpcName(rpc), context->peer(), StatusCodeName(status.error_code()),
                  status.error_message());
  }
  return status;
}

grpc::Status VerifaceService::Embed(grpc::ServerContext* context, const v1::EmbedRequest* request,
                                    v1::EmbedResponse* response) {
  return Handle(Rpc::kEmbed, context, [&](Backend& backend, const CallBudget& budget) -> absl::Status {
    const int limit = config_.max_faces_per_image;
    if (request->max_faces() < 0 || request->max_faces() > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_faces is ", request->max_faces(), "; it must be 0 (the server's limit) to ", limit));
    }
    const int max_faces = request->max_faces() == 0 ? limit : request->max_faces();
    VF_RETURN_IF_ERROR(backend.pipeline->CheckCapacity());
    VF_ASSIGN_OR_RETURN(cv::Mat rgb, Decode(request->image(), "image", config_));
    VF_ASSIGN_OR_RETURN(DetectorOptions options, DetectionFor(request->detection(), backend, config_, "image"));
    const std::vector<DetectRequest> jobs{DetectRequest{rgb, options}};
    VF_ASSIGN_OR_RETURN(auto detections, backend.pipeline->Detect(jobs, budget));
    std::vector<FaceDetection>& faces = detections.front();
    metrics_->ObserveFaces(static_cast<int>(faces.size()));
    // Faces come by descending score: the most confident are kept.
    const size_t kept = std::min(faces.size(), static_cast<size_t>(max_faces));
    response->set_faces_omitted(static_cast<int>(faces.size() - kept));
    faces.resize(kept);
    std::vector<std::vector<float>> embeddings;
    if (!request->skip_embeddings() && !faces.empty()) {
      const std::vector<const cv::Mat*> images(faces.size(), &rgb);
      VF_ASSIGN_OR_RETURN(embeddings, backend.pipeline->Embed(images, faces, budget));
    }
    for (size_t i = 0; i < faces.size(); ++i) {
      v1::Face* face = response->add_faces();
      FillFace(faces[i], face);
      if (i < embeddings.size()) face->mutable_embedding()->Add(embeddings[i].begin(), embeddings[i].end());
    }
    response->set_image_width(rgb.cols);
    response->set_image_height(rgb.rows);
    response->set_model_id(backend.pipeline->spec().model_id);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::Verify(grpc::ServerContext* context, const v1::VerifyRequest* request,
                                     v1::VerifyResponse* response) {
  return Handle(Rpc::kVerify, context, [&](Backend& backend, const CallBudget& budget) -> absl::Status {
    VF_ASSIGN_OR_RETURN(const Threshold threshold, ThresholdFor(request->threshold(), backend));
    const v1::FaceInput* sides[2] = {&request->a(), &request->b()};
    const char* names[2] = {"a", "b"};
    const int64_t dim = backend.pipeline->spec().embedding_dim;

    // Embeddings of the image and embedding sides; identity sides are compared through the gallery.
    std::vector<float> vectors[2];
    std::vector<FaceJob> jobs;
    std::vector<int> job_side;
    int identity_sides = 0;
    for (int s = 0; s < 2; ++s) {
      const v1::FaceInput& side = *sides[s];
      switch (side.source_case()) {
        case v1::FaceInput::kImage:
          jobs.push_back(
              FaceJob{&side.image(), absl::StrCat(names[s], ".image"), side.face_selection(), &side.detection()});
          job_side.push_back(s);
          break;
        case v1::FaceInput::kEmbedding: {
          VF_ASSIGN_OR_RETURN(vectors[s], UnitEmbedding(side.embedding(), dim, absl::StrCat(names[s], ".embedding")));
          break;
        }
        case v1::FaceInput::kIdentityId:
          VF_RETURN_IF_ERROR(CheckId(side.identity_id(), absl::StrCat(names[s], ".identity_id")));
          ++identity_sides;
          break;
        case v1::FaceInput::SOURCE_NOT_SET:
          return absl::InvalidArgumentError(
              absl::StrCat(names[s], " is empty: give an image, an embedding or an identity_id"));
      }
    }
    // Fail fast on an unknown identity before spending compute on the other side.
    for (int s = 0; s < 2; ++s) {
      if (sides[s]->source_case() == v1::FaceInput::kIdentityId) {
        VF_RETURN_IF_ERROR(Annotate(backend.gallery->Get(sides[s]->identity_id()).status(), names[s]));
      }
    }
    if (!jobs.empty()) {
      VF_ASSIGN_OR_RETURN(auto faces, EmbedOneFaceEach(jobs, backend, config_, *metrics_, budget));
      for (size_t j = 0; j < jobs.size(); ++j) {
        const int s = job_side[j];
        vectors[s] = std::move(faces[j].embedding);
        *(s == 0 ? response->mutable_face_a() : response->mutable_face_b()) = std::move(faces[j].used);
      }
    }
    float similarity = 0;
    if (identity_sides == 2) {
      // Two enrolled identities: their most similar pair of templates.
      VF_ASSIGN_OR_RETURN(const IdentityPairMatch m,
                          backend.gallery->CompareIdentities(sides[0]->identity_id(), sides[1]->identity_id()));
      similarity = m.similarity;
      response->set_template_id_a(m.template_a);
      response->set_template_id_b(m.template_b);
    } else if (identity_sides == 1) {
      const int id_side = sides[0]->source_case() == v1::FaceInput::kIdentityId ? 0 : 1;
      VF_ASSIGN_OR_RETURN(const IdentityMatch m,
                          backend.gallery->Compare(vectors[1 - id_side], sides[id_side]->identity_id()));
      similarity = m.similarity;
      (id_side == 0 ? response->mutable_template_id_a() : response->mutable_template_id_b())
          ->assign(m.best_template_id);
    } else {
      similarity = Dot(vectors[0], vectors[1]);
    }
    response->set_similarity(similarity);
    response->set_threshold(threshold.value);
    response->set_threshold_source(threshold.source);
    response->set_match(similarity >= threshold.value);
    response->set_model_id(backend.pipeline->spec().model_id);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::Enroll(grpc::ServerContext* context, const v1::EnrollRequest* request,
                                     v1::EnrollResponse* response) {
  return Handle(Rpc::kEnroll, context, [&](Backend& backend, const CallBudget& budget) {
    return EnrollOne(*request, backend, config_, *metrics_, budget, response);
  });
}

grpc::Status VerifaceService::EnrollStream(
    grpc::ServerContext* context, grpc::ServerReaderWriter<v1::EnrollStreamResponse, v1::EnrollRequest>* stream) {
  return Handle(Rpc::kEnrollStream, context, [&](Backend& backend, const CallBudget& budget) -> absl::Status {
    // Items run concurrently (so that they share batches) but are answered in order, each once committed.
    // The reader blocks while `stream_window` items are in flight, which bounds the memory a stream holds.
    BoundedQueue<std::future<v1::EnrollStreamResponse>> in_flight(static_cast<size_t>(config_.stream_window));
    std::atomic<bool> write_failed{false};
    std::thread writer([&] {
      while (auto next = in_flight.Pop()) {
        const v1::EnrollStreamResponse response = next->get();
        metrics_->ObserveStreamItem(
            RpcName(Rpc::kEnrollStream),
            response.has_error() ? static_cast<grpc::StatusCode>(response.error().code()) : grpc::StatusCode::OK);
        if (!write_failed && !stream->Write(response)) write_failed = true;
      }
    });
    const auto finish = [&] {
      in_flight.Close();
      writer.join();
    };
    int64_t index = 0;
    v1::EnrollRequest request;
    try {
      while (!write_failed && stream->Read(&request)) {
        in_flight.Push(std::async(std::launch::async, [&, index, item = std::move(request)] {
          v1::EnrollStreamResponse response;
          response.set_index(index);
          absl::Status status;
          try {
            status = EnrollOne(item, backend, config_, *metrics_, budget, response.mutable_enrolled());
          } catch (const std::exception& e) {
            status = absl::InternalError(absl::StrCat("enrolment failed: ", e.what()));
          }
          if (!status.ok()) {
            response.clear_enrolled();
            response.mutable_error()->set_code(static_cast<int>(status.code()));
            response.mutable_error()->set_message(std::string(status.message()));
          }
          return response;
        }));
        ++index;
        request.Clear();
      }
    } catch (...) {
      finish();  // a std::thread must be joined before it is destroyed
      throw;
    }
    finish();
    if (write_failed) return absl::CancelledError("the client stopped reading the responses");
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::Identify(grpc::ServerContext* context, const v1::IdentifyRequest* request,
                                       v1::IdentifyResponse* response) {
  return Handle(Rpc::kIdentify, context, [&](Backend& backend, const CallBudget& budget) -> absl::Status {
    if (request->top_k() < 0 || request->top_k() > config_.max_top_k) {
      return absl::InvalidArgumentError(
          absl::StrCat("top_k is ", request->top_k(), "; it must be 0 (meaning 5) to ", config_.max_top_k));
    }
    const int k = request->top_k() == 0 ? kDefaultTopK : request->top_k();
    VF_ASSIGN_OR_RETURN(const Threshold threshold, ThresholdFor(request->threshold(), backend));
    const std::vector<FaceJob> jobs{
        FaceJob{&request->image(), "image", request->face_selection(), &request->detection()}};
    VF_ASSIGN_OR_RETURN(auto faces, EmbedOneFaceEach(jobs, backend, config_, *metrics_, budget));
    // Cosine similarities are >= -1, so -2 keeps everything.
    const float floor = request->include_below_threshold() ? -2.0F : static_cast<float>(threshold.value);
    VF_ASSIGN_OR_RETURN(const auto matches, backend.gallery->Identify(faces[0].embedding, k, floor));
    for (const IdentityMatch& m : matches) {
      v1::IdentityMatch* out = response->add_matches();
      out->set_identity_id(m.identity_id);
      out->set_similarity(m.similarity);
      out->set_match(m.similarity >= threshold.value);
      out->set_template_id(m.best_template_id);
      const auto info = backend.gallery->Get(m.identity_id);  // may have been deleted meanwhile
      if (info.ok()) out->mutable_metadata()->insert(info->record.metadata.begin(), info->record.metadata.end());
    }
    response->set_threshold(threshold.value);
    response->set_threshold_source(threshold.source);
    response->set_model_id(backend.pipeline->spec().model_id);
    *response->mutable_face() = std::move(faces[0].used);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::DeleteIdentity(grpc::ServerContext* context, const v1::DeleteIdentityRequest* request,
                                             v1::DeleteIdentityResponse* response) {
  return Handle(Rpc::kDeleteIdentity, context, [&](Backend& backend, const CallBudget&) -> absl::Status {
    VF_RETURN_IF_ERROR(CheckId(request->identity_id(), "identity_id"));
    VF_ASSIGN_OR_RETURN(const IdentityInfo info, backend.gallery->Get(request->identity_id()));
    VF_RETURN_IF_ERROR(backend.gallery->Delete(request->identity_id()));
    response->set_identity_id(request->identity_id());
    response->set_templates_deleted(static_cast<int>(info.template_ids.size()));
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::GetIdentity(grpc::ServerContext* context, const v1::GetIdentityRequest* request,
                                          v1::Identity* response) {
  return Handle(Rpc::kGetIdentity, context, [&](Backend& backend, const CallBudget&) -> absl::Status {
    VF_RETURN_IF_ERROR(CheckId(request->identity_id(), "identity_id"));
    VF_ASSIGN_OR_RETURN(const IdentityInfo info, backend.gallery->Get(request->identity_id()));
    FillIdentity(info, response);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::ListIdentities(grpc::ServerContext* context, const v1::ListIdentitiesRequest* request,
                                             v1::ListIdentitiesResponse* response) {
  return Handle(Rpc::kListIdentities, context, [&](Backend& backend, const CallBudget&) -> absl::Status {
    if (request->page_size() < 0 || request->page_size() > config_.max_page_size) {
      return absl::InvalidArgumentError(absl::StrCat("page_size is ", request->page_size(),
                                                     "; it must be 0 (meaning 100) to ", config_.max_page_size));
    }
    const int page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
    VF_ASSIGN_OR_RETURN(const IdentityPage page, backend.gallery->List(page_size, request->page_token()));
    for (const IdentityInfo& info : page.identities) FillIdentity(info, response->add_identities());
    response->set_next_page_token(page.next_page_token);
    response->set_total_identities(backend.gallery->identity_count());
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest*,
                                           v1::ModelInfo* response) {
  return Handle(Rpc::kGetModelInfo, context, [&](Backend& backend, const CallBudget&) -> absl::Status {
    const ModelSpec& spec = backend.pipeline->spec();
    response->set_model_id(spec.model_id);
    response->set_description(spec.description);
    response->set_embedding_dim(static_cast<int>(spec.embedding_dim));
    response->mutable_thresholds()->insert(spec.thresholds.begin(), spec.thresholds.end());
    response->set_default_operating_point(spec.default_operating_point);
    response->set_default_threshold(backend.default_threshold.value);
    response->set_default_threshold_source(backend.default_threshold.source);
    VF_RETURN_IF_ERROR(JsonToStruct(spec.accuracy, response->mutable_accuracy()));
    VF_RETURN_IF_ERROR(JsonToStruct(spec.provenance, response->mutable_provenance()));
    response->set_default_min_face_size(spec.detector_defaults.min_face_size);
    response->set_device(backend.pipeline->device());
    response->set_server_version(kVersion);
    response->set_gallery_identities(backend.gallery->identity_count());
    response->set_gallery_templates(backend.gallery->template_count());
    return absl::OkStatus();
  });
}

}  // namespace veriface::server
