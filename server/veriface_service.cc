#include "server/veriface_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/retry_after.h"
#include "core/common/status_macros.h"
#include "core/serving/batched_engine.h"
#include "server/core_options.h"
#include "server/gallery_store_open.h"
#include "server/translate.h"
#include "server/version.h"

namespace veriface::server {
namespace {

using Clock = std::chrono::steady_clock;

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

// The retry hint of a refusal, for programs: people read it in the message.
void AddRetryAfter(grpc::ServerContext* context, std::chrono::milliseconds wait) {
  context->AddTrailingMetadata("retry-after-ms", std::to_string(wait.count()));
}

// An enrolment's audit line as far as its request tells.
AuditEvent EnrollAudit(const v1::EnrollRequest& request) {
  AuditEvent audit;
  audit.gallery = request.gallery();
  audit.identity = request.identity_id();
  audit.request_id = request.request_id();
  return audit;
}

absl::Status Enroll(FaceService& service, const v1::EnrollRequest& request, const CallBudget& budget,
                    v1::EnrollResponse* response) {
  VF_ASSIGN_OR_RETURN(const EnrollQuery query, FromProto(request));
  VF_ASSIGN_OR_RETURN(const EnrollAnswer answer, service.Enroll(query, budget));
  ToProto(answer, response);
  return absl::OkStatus();
}

}  // namespace

VerifaceService::VerifaceService(ServerConfig config, std::shared_ptr<Metrics> metrics,
                                 std::shared_ptr<const CallGuard> guard, std::shared_ptr<RateLimiter> limiter,
                                 std::shared_ptr<AuditLog> audit)
    : config_(std::move(config)),
      metrics_(std::move(metrics)),
      guard_(std::move(guard)),
      limiter_(std::move(limiter)),
      audit_(std::move(audit)) {}

VerifaceService::~VerifaceService() = default;

absl::Status VerifaceService::Load() {
  VF_ASSIGN_OR_RETURN(auto engine, BatchedEngine::Load(ModelOptionsOf(config_), EngineOptionsOf(config_), metrics_));
  const ModelSpec& spec = engine->spec();
  const std::string device = engine->device();
  const std::string location = GalleryLocation(config_);
  auto store = OpenGalleryStore(config_);
  if (!store.ok()) {
    return absl::Status(store.status().code(), absl::StrCat("gallery ", location, ": ", store.status().message()));
  }
  IndexOptions index = config_.gallery_index;
  // Building an approximate index over millions of templates takes minutes: say how far it has got.
  index.on_build_progress = [](const std::string& gallery, int64_t added, int64_t total) {
    spdlog::info("gallery '{}': index built over {} of {} templates", gallery, added, total);
  };
  auto gallery =
      Gallery::Open(*std::move(store), spec.model_id, spec.embedding_dim, GalleryLimitsOf(config_), std::move(index));
  if (!gallery.ok()) {
    return absl::Status(gallery.status().code(), absl::StrCat("gallery ", location, ": ", gallery.status().message()));
  }
  metrics_->SetModelInfo(spec.model_id, spec.embedding_dim, device);
  VF_ASSIGN_OR_RETURN(std::shared_ptr<FaceService> service,
                      FaceService::Create(ServiceOptionsOf(config_), std::move(engine), *std::move(gallery), metrics_));
  const Threshold& threshold = service->default_threshold();
  if (threshold.source == "server-fallback") {
    spdlog::warn("{}; using model.fallback_threshold {}",
                 std::string(service->spec().DefaultThreshold().status().message()), threshold.value);
  }
  spdlog::info(
      "model {} on {} ({}-D, threshold {} from {}); gallery {} ({}): {} galleries, {} identities, {} templates",
      spec.model_id, device, spec.embedding_dim, threshold.value, threshold.source, location,
      service->gallery().store_kind(), service->gallery().gallery_count(), service->gallery().identity_count(),
      service->gallery().template_count());
  for (const GallerySummary& g : service->ListGalleries()) {
    spdlog::info("gallery '{}': {} templates, searched with {} ({}, {:.1f} MB)", g.record.name, g.templates,
                 g.index.index, g.index.exact ? "exact" : "approximate", g.index_memory_bytes / 1e6);
  }
  std::atomic_store(&service_, std::move(service));
  return absl::OkStatus();
}

void VerifaceService::Shutdown() {
  const auto service = std::atomic_load(&service_);
  if (service != nullptr) service->Shutdown();
}

grpc::Status VerifaceService::Limit(const std::string& key_name, grpc::ServerContext* context) {
  const RateLimiter::Decision decision = limiter_->Take(key_name);
  if (decision.admitted) return grpc::Status::OK;
  const int64_t retry_ms = decision.retry_after.count();
  AddRetryAfter(context, decision.retry_after);
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat(key_name.empty() ? std::string("this server's rate limit")
                                    : absl::StrCat("API key '", key_name, "' is over its rate limit"),
                   " of ", decision.limit.per_second, " calls/s; retry in ", retry_ms, " ms (retry-after-ms)"));
}

template <typename Fn>
grpc::Status VerifaceService::Handle(Rpc rpc, grpc::ServerContext* context, Fn&& fn, AuditEvent* audit) {
  const auto start = Clock::now();
  const Admission admission = guard_->Admit(*context, rpc);
  if (audit != nullptr) {  // before fn runs: a stream's items are recorded with the caller's name
    audit->method = RpcName(rpc);
    audit->key_name = admission.key_name;
    audit->peer = context->peer();
  }
  grpc::Status status = admission.status;
  if (status.ok()) status = Limit(admission.key_name, context);
  if (status.ok()) {
    const std::shared_ptr<FaceService> service = std::atomic_load(&service_);
    if (service == nullptr) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the server is still loading its model and gallery; retry when grpc.health.v1 says "
                            "SERVING");
    } else {
      try {
        const absl::Status answer = fn(*service, BudgetOf(context));
        if (const auto wait = RetryAfter(answer)) AddRetryAfter(context, *wait);
        status = ToGrpc(answer);
      } catch (const std::exception& e) {
        status = grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat(RpcName(rpc), " failed: ", e.what()));
      }
    }
  }
  metrics_->ObserveRpc(RpcName(rpc), status.error_code(), Clock::now() - start);
  if (audit != nullptr) {
    audit->code = status.error_code();
    if (!status.ok()) audit->error = status.error_message();
    audit_->Record(*audit);
  }
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
  return Handle(Rpc::kEmbed, context, [&](FaceService& service, const CallBudget& budget) -> absl::Status {
    VF_ASSIGN_OR_RETURN(const EmbedAnswer answer, service.Embed(FromProto(*request), budget));
    ToProto(answer, response);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::Verify(grpc::ServerContext* context, const v1::VerifyRequest* request,
                                     v1::VerifyResponse* response) {
  return Handle(Rpc::kVerify, context, [&](FaceService& service, const CallBudget& budget) -> absl::Status {
    VF_ASSIGN_OR_RETURN(const VerifyQuery query, FromProto(*request));
    VF_ASSIGN_OR_RETURN(const VerifyAnswer answer, service.Verify(query, budget));
    ToProto(answer, response);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::Identify(grpc::ServerContext* context, const v1::IdentifyRequest* request,
                                       v1::IdentifyResponse* response) {
  return Handle(Rpc::kIdentify, context, [&](FaceService& service, const CallBudget& budget) -> absl::Status {
    VF_ASSIGN_OR_RETURN(const IdentifyQuery query, FromProto(*request));
    VF_ASSIGN_OR_RETURN(const IdentifyAnswer answer, service.Identify(query, budget));
    ToProto(answer, response);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::Enroll(grpc::ServerContext* context, const v1::EnrollRequest* request,
                                     v1::EnrollResponse* response) {
  AuditEvent audit = EnrollAudit(*request);
  return Handle(
      Rpc::kEnroll, context,
      [&](FaceService& service, const CallBudget& budget) {
        VF_RETURN_IF_ERROR(server::Enroll(service, *request, budget, response));
        audit.template_ids.assign(response->template_ids().begin(), response->template_ids().end());
        return absl::OkStatus();
      },
      &audit);
}

grpc::Status VerifaceService::EnrollStream(
    grpc::ServerContext* context, grpc::ServerReaderWriter<v1::EnrollStreamResponse, v1::EnrollRequest>* stream) {
  AuditEvent stream_audit;  // the stream as a whole; each item gets a line of its own
  return Handle(
      Rpc::kEnrollStream, context,
      [&](FaceService& service, const CallBudget& budget) -> absl::Status {
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
                status = server::Enroll(service, item, budget, response.mutable_enrolled());
              } catch (const std::exception& e) {
                status = absl::InternalError(absl::StrCat("enrolment failed: ", e.what()));
              }
              AuditEvent item_audit = EnrollAudit(item);
              item_audit.method = stream_audit.method;
              item_audit.key_name = stream_audit.key_name;
              item_audit.peer = stream_audit.peer;
              item_audit.stream_index = index;
              item_audit.code = ToGrpc(status).error_code();
              if (!status.ok()) {
                item_audit.error = std::string(status.message());
                response.clear_enrolled();
                response.mutable_error()->set_code(static_cast<int>(status.code()));
                response.mutable_error()->set_message(std::string(status.message()));
              } else {
                item_audit.template_ids.assign(response.enrolled().template_ids().begin(),
                                               response.enrolled().template_ids().end());
              }
              audit_->Record(item_audit);
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
      },
      &stream_audit);
}

grpc::Status VerifaceService::DeleteIdentity(grpc::ServerContext* context, const v1::DeleteIdentityRequest* request,
                                             v1::DeleteIdentityResponse* response) {
  AuditEvent audit;
  audit.gallery = request->gallery();
  audit.identity = request->identity_id();
  audit.request_id = request->request_id();
  return Handle(
      Rpc::kDeleteIdentity, context,
      [&](FaceService& service, const CallBudget&) -> absl::Status {
        const DeleteQuery query = FromProto(*request);
        // The templates the delete takes away, for the audit line (none when the identity is unknown or
        // this is a replay of a delete already done).
        if (const auto before = service.Get(query.identity); before.ok()) audit.template_ids = before->template_ids;
        VF_ASSIGN_OR_RETURN(const DeleteAnswer answer, service.Delete(query));
        if (answer.replayed) audit.template_ids.clear();
        ToProto(answer, response);
        return absl::OkStatus();
      },
      &audit);
}

grpc::Status VerifaceService::GetIdentity(grpc::ServerContext* context, const v1::GetIdentityRequest* request,
                                          v1::Identity* response) {
  return Handle(Rpc::kGetIdentity, context, [&](FaceService& service, const CallBudget&) -> absl::Status {
    VF_ASSIGN_OR_RETURN(const IdentityInfo info, service.Get(FromProto(*request)));
    ToProto(info, response);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::ListIdentities(grpc::ServerContext* context, const v1::ListIdentitiesRequest* request,
                                             v1::ListIdentitiesResponse* response) {
  return Handle(Rpc::kListIdentities, context, [&](FaceService& service, const CallBudget&) -> absl::Status {
    VF_ASSIGN_OR_RETURN(const ListAnswer answer,
                        service.List(request->gallery(), request->page_size(), request->page_token()));
    ToProto(answer, response);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest*,
                                           v1::ModelInfo* response) {
  return Handle(Rpc::kGetModelInfo, context, [&](FaceService& service, const CallBudget&) -> absl::Status {
    VF_RETURN_IF_ERROR(ToProto(service.Info(), response));
    response->set_server_version(kVersion);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::CreateGallery(grpc::ServerContext* context, const v1::CreateGalleryRequest* request,
                                            v1::GalleryInfo* response) {
  AuditEvent audit;
  audit.gallery = request->name();
  return Handle(
      Rpc::kCreateGallery, context,
      [&](FaceService& service, const CallBudget&) -> absl::Status {
        VF_ASSIGN_OR_RETURN(const GallerySummary created,
                            service.CreateGallery(request->name(), request->max_templates()));
        ToProto(created, response);
        return absl::OkStatus();
      },
      &audit);
}

grpc::Status VerifaceService::ListGalleries(grpc::ServerContext* context, const v1::ListGalleriesRequest*,
                                            v1::ListGalleriesResponse* response) {
  return Handle(Rpc::kListGalleries, context, [&](FaceService& service, const CallBudget&) -> absl::Status {
    ToProto(service.ListGalleries(), response);
    return absl::OkStatus();
  });
}

grpc::Status VerifaceService::DeleteGallery(grpc::ServerContext* context, const v1::DeleteGalleryRequest* request,
                                            v1::GalleryInfo* response) {
  AuditEvent audit;
  audit.gallery = request->name();
  return Handle(
      Rpc::kDeleteGallery, context,
      [&](FaceService& service, const CallBudget&) -> absl::Status {
        VF_ASSIGN_OR_RETURN(const GallerySummary deleted, service.DeleteGallery(request->name()));
        ToProto(deleted, response);
        return absl::OkStatus();
      },
      &audit);
}

grpc::Status VerifaceService::GetGalleryReport(grpc::ServerContext* context, const v1::GalleryReportRequest* request,
                                               v1::GalleryReport* response) {
  return Handle(Rpc::kGetGalleryReport, context, [&](FaceService& service, const CallBudget&) -> absl::Status {
    VF_ASSIGN_OR_RETURN(const GalleryReportAnswer answer, service.Report(FromProto(*request)));
    ToProto(answer, response);
    return absl::OkStatus();
  });
}

}  // namespace veriface::server
