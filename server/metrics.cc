#include "server/metrics.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <exception>

#include "absl/strings/str_cat.h"
#include "server/call_guard.h"
#include "server/version.h"

namespace veriface::server {
namespace {

using prometheus::Histogram;

Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}
Histogram::BucketBoundaries BatchBuckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256}; }
Histogram::BucketBoundaries FaceBuckets() { return {0, 1, 2, 3, 5, 10, 20, 50, 100}; }

double Seconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1e6; }

// The codes created at 0 for every method: success, and the failures a caller or an alert commonly
// looks for (bad input, unknown ids, saturation, deadlines, auth, loading, bugs).
constexpr grpc::StatusCode kCommonCodes[] = {
    grpc::StatusCode::OK,
    grpc::StatusCode::CANCELLED,
    grpc::StatusCode::INVALID_ARGUMENT,
    grpc::StatusCode::DEADLINE_EXCEEDED,
    grpc::StatusCode::NOT_FOUND,
    grpc::StatusCode::PERMISSION_DENIED,
    grpc::StatusCode::RESOURCE_EXHAUSTED,
    grpc::StatusCode::FAILED_PRECONDITION,
    grpc::StatusCode::INTERNAL,
    grpc::StatusCode::UNAVAILABLE,
    grpc::StatusCode::UNAUTHENTICATED,
};

// Every DropReason of core/batch/batch_observer.h.
constexpr DropReason kDropReasons[] = {DropReason::kQueueFull, DropReason::kDeadlineExceeded, DropReason::kCancelled,
                                       DropReason::kShutdown};

}  // namespace

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    default:
      return "UNKNOWN";
  }
}

Metrics::Metrics(const std::string& torch_version)
    : registry_(std::make_shared<prometheus::Registry>()),
      rpc_requests_(prometheus::BuildCounter()
                        .Name("veriface_rpc_requests_total")
                        .Help("RPCs finished, by method and gRPC status code")
                        .Register(*registry_)),
      rpc_duration_(prometheus::BuildHistogram()
                        .Name("veriface_rpc_duration_seconds")
                        .Help("RPC latency in the server, from the handler's start to its status")
                        .Register(*registry_)),
      stream_items_(prometheus::BuildCounter()
                        .Name("veriface_stream_items_total")
                        .Help("Items of streaming RPCs, by method and per-item status code")
                        .Register(*registry_)),
      queue_wait_(prometheus::BuildHistogram()
                      .Name("veriface_batch_queue_wait_seconds")
                      .Help("Time an item waited in a model stage's queue before a worker took it")
                      .Register(*registry_)),
      compute_(prometheus::BuildHistogram()
                   .Name("veriface_batch_compute_seconds")
                   .Help("Duration of one batch of a model stage")
                   .Register(*registry_)),
      batch_size_(prometheus::BuildHistogram()
                      .Name("veriface_batch_size")
                      .Help("Items per batch of a model stage")
                      .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("veriface_batch_queue_depth")
                       .Help("Items waiting in a model stage's queue")
                       .Register(*registry_)),
      queue_capacity_(prometheus::BuildGauge()
                          .Name("veriface_batch_queue_capacity")
                          .Help("Items a model stage's queue holds before calls fail with RESOURCE_EXHAUSTED")
                          .Register(*registry_)),
      dropped_(prometheus::BuildCounter()
                   .Name("veriface_batch_dropped_total")
                   .Help("Items answered without being computed (queue full, deadline passed, cancelled, shutdown)")
                   .Register(*registry_)),
      batch_failures_(prometheus::BuildCounter()
                          .Name("veriface_batch_failures_total")
                          .Help("Batch function calls that failed as a whole")
                          .Register(*registry_)),
      faces_per_image_(prometheus::BuildHistogram()
                           .Name("veriface_faces_per_image")
                           .Help("Faces the detector found per image")
                           .Register(*registry_)
                           .Add({}, FaceBuckets())),
      gallery_identities_(prometheus::BuildGauge()
                              .Name("veriface_gallery_identities")
                              .Help("Identities enrolled in the gallery")
                              .Register(*registry_)
                              .Add({})),
      gallery_templates_(prometheus::BuildGauge()
                             .Name("veriface_gallery_templates")
                             .Help("Face templates in the gallery")
                             .Register(*registry_)
                             .Add({})),
      galleries_(prometheus::BuildGauge()
                     .Name("veriface_galleries")
                     .Help("Named galleries, the default one included")
                     .Register(*registry_)
                     .Add({})),
      calls_in_progress_(prometheus::BuildGauge()
                             .Name("veriface_calls_in_progress")
                             .Help("Calls doing model work now; limits.max_concurrent_calls bounds them")
                             .Register(*registry_)
                             .Add({})),
      store_up_(prometheus::BuildGauge()
                    .Name("veriface_gallery_store_up")
                    .Help("1 while the gallery store answers; 0 while it cannot be reached (reads still served)")
                    .Register(*registry_)
                    .Add({})),
      stale_seconds_(prometheus::BuildGauge()
                         .Name("veriface_gallery_stale_seconds")
                         .Help("Seconds since this replica last caught up with the shared gallery store (0 for SQLite)")
                         .Register(*registry_)
                         .Add({})),
      replication_lag_(prometheus::BuildHistogram()
                           .Name("veriface_gallery_replication_lag_seconds")
                           .Help("From another replica's gallery write to its application here, on the store's clock")
                           .Register(*registry_)
                           .Add({}, LatencyBuckets())),
      changes_applied_(prometheus::BuildCounter()
                           .Name("veriface_gallery_changes_applied_total")
                           .Help("Identities and galleries replaced from the shared store")
                           .Register(*registry_)
                           .Add({})),
      build_info_(prometheus::BuildGauge()
                      .Name("veriface_build_info")
                      .Help("Build of this server; always 1")
                      .Register(*registry_)),
      model_info_(prometheus::BuildGauge()
                      .Name("veriface_model_info")
                      .Help("The loaded model bundle; always 1")
                      .Register(*registry_)) {
  build_info_.Add({{"version", kVersion}, {"grpc_version", grpc::Version()}, {"torch_version", torch_version}}).Set(1);
  for (const Rpc rpc : kAllRpcs) {
    const std::string method = RpcName(rpc);
    for (const grpc::StatusCode code : kCommonCodes)
      rpc_requests_.Add({{"method", method}, {"code", StatusCodeName(code)}});
    rpc_duration_.Add({{"method", method}}, LatencyBuckets());
    if (rpc == Rpc::kEnrollStream) {
      for (const grpc::StatusCode code : kCommonCodes)
        stream_items_.Add({{"method", method}, {"code", StatusCodeName(code)}});
    }
  }
}

void Metrics::AddStage(const std::string& stage, int64_t queue_capacity) {
  queue_capacity_.Add({{"stage", stage}}).Set(static_cast<double>(queue_capacity));
  queue_depth_.Add({{"stage", stage}});
  queue_wait_.Add({{"stage", stage}}, LatencyBuckets());
  compute_.Add({{"stage", stage}}, LatencyBuckets());
  batch_size_.Add({{"stage", stage}}, BatchBuckets());
  batch_failures_.Add({{"stage", stage}});
  for (const DropReason reason : kDropReasons) dropped_.Add({{"stage", stage}, {"reason", DropReasonName(reason)}});
}

Metrics::~Metrics() = default;

absl::Status Metrics::Serve(const std::string& listen) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on '", listen, "': ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  return absl::OkStatus();
}

int Metrics::port() const {
  if (exposer_ == nullptr) return 0;
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Metrics::ObserveRpc(const std::string& method, grpc::StatusCode code,
                         std::chrono::steady_clock::duration elapsed) {
  rpc_requests_.Add({{"method", method}, {"code", StatusCodeName(code)}}).Increment();
  rpc_duration_.Add({{"method", method}}, LatencyBuckets()).Observe(std::chrono::duration<double>(elapsed).count());
}

void Metrics::ObserveStreamItem(const std::string& method, grpc::StatusCode code) {
  stream_items_.Add({{"method", method}, {"code", StatusCodeName(code)}}).Increment();
}

void Metrics::OnFacesDetected(int faces) { faces_per_image_.Observe(faces); }

void Metrics::OnGallerySize(int64_t identities, int64_t templates, int64_t galleries) {
  gallery_identities_.Set(static_cast<double>(identities));
  gallery_templates_.Set(static_cast<double>(templates));
  galleries_.Set(static_cast<double>(galleries));
}

void Metrics::OnCallsInProgress(int calls) { calls_in_progress_.Set(calls); }

void Metrics::OnGallerySync(const SyncReport& report) {
  for (const double lag : report.lag_seconds) replication_lag_.Observe(lag);
  changes_applied_.Increment(static_cast<double>(report.changes));
}

void Metrics::OnGalleryFreshness(const GalleryFreshness& freshness) {
  store_up_.Set(freshness.store_up ? 1 : 0);
  stale_seconds_.Set(freshness.seconds_since_sync);
}

void Metrics::OnGallerySyncState(const absl::Status& status) {
  if (status.ok()) {
    spdlog::info("gallery store reachable again; following other replicas' writes");
  } else {
    spdlog::warn("gallery store unreachable; serving reads from memory, writes fail with UNAVAILABLE: {}",
                 status.ToString());
  }
}

void Metrics::SetModelInfo(const std::string& model_id, int64_t embedding_dim, const std::string& device) {
  model_info_.Add({{"model_id", model_id}, {"embedding_dim", std::to_string(embedding_dim)}, {"device", device}})
      .Set(1);
}

void Metrics::OnQueueDepth(const std::string& batcher, int64_t depth) {
  queue_depth_.Add({{"stage", batcher}}).Set(static_cast<double>(depth));
}

void Metrics::OnQueueWait(const std::string& batcher, std::chrono::microseconds wait) {
  queue_wait_.Add({{"stage", batcher}}, LatencyBuckets()).Observe(Seconds(wait));
}

void Metrics::OnBatch(const std::string& batcher, int64_t size, std::chrono::microseconds compute, bool ok) {
  batch_size_.Add({{"stage", batcher}}, BatchBuckets()).Observe(static_cast<double>(size));
  compute_.Add({{"stage", batcher}}, LatencyBuckets()).Observe(Seconds(compute));
  if (!ok) batch_failures_.Add({{"stage", batcher}}).Increment();
}

void Metrics::OnDropped(const std::string& batcher, DropReason reason) {
  dropped_.Add({{"stage", batcher}, {"reason", DropReasonName(reason)}}).Increment();
}

}  // namespace veriface::server
