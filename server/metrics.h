#pragma once
// The server's Prometheus metrics (prometheus-cpp), served on their own port. Names follow Prometheus
// conventions: a veriface_ prefix, base units (seconds), _total on counters, _info gauges set to 1.
//
//   veriface_rpc_requests_total{method,code}       counter    RPCs finished, by gRPC status code
//   veriface_rpc_duration_seconds{method}          histogram  RPC latency, handler start to status
//   veriface_stream_items_total{method,code}       counter    items of streaming RPCs, by outcome
//   veriface_batch_queue_wait_seconds{stage}       histogram  submit to a worker taking the item
//   veriface_batch_compute_seconds{stage}          histogram  one batch function call
//   veriface_batch_size{stage}                     histogram  items per batch
//   veriface_batch_queue_depth{stage}              gauge      items waiting
//   veriface_batch_queue_capacity{stage}           gauge      items that may wait (inference.<stage>.max_queue_size)
//   veriface_batch_dropped_total{stage,reason}     counter    items answered without compute
//   veriface_faces_per_image                       histogram  faces the detector found per image
//   veriface_gallery_identities / _templates       gauge      gallery size, over all galleries
//   veriface_galleries                             gauge      named galleries
//   veriface_gallery_store_up                      gauge      1 while the gallery store answers, else 0
//   veriface_gallery_stale_seconds                 gauge      since this replica last caught up with a shared store
//   veriface_gallery_replication_lag_seconds       histogram  another replica's write to its arrival here
//   veriface_gallery_changes_applied_total         counter    identities and galleries replaced from the store
//   veriface_build_info{version,grpc_version,torch_version}  gauge = 1
//   veriface_model_info{model_id,embedding_dim,device}       gauge = 1
//
// prometheus-cpp shows a labelled series only once it exists, so the series a dashboard or an alert
// divides by are created at 0 up front: every method with the status codes it commonly ends with, and
// every stage (AddStage) with every drop reason.

#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/batch/batch_observer.h"
#include "core/serving/service_observer.h"

namespace prometheus {
class Exposer;
}

namespace veriface::server {

// "OK", "INVALID_ARGUMENT", ...: the names gRPC's documentation uses.
const char* StatusCodeName(grpc::StatusCode code);

class Metrics : public BatchObserver, public ServiceObserver {
 public:
  explicit Metrics(const std::string& torch_version);
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Serves /metrics on `listen` ("host:port"; port 0 picks a free one). UNAVAILABLE when it cannot bind.
  absl::Status Serve(const std::string& listen);
  // The bound port, or 0 when not serving.
  int port() const;

  void ObserveRpc(const std::string& method, grpc::StatusCode code, std::chrono::steady_clock::duration elapsed);
  void ObserveStreamItem(const std::string& method, grpc::StatusCode code);
  void SetModelInfo(const std::string& model_id, int64_t embedding_dim, const std::string& device);
  // Creates a model stage's series at 0 and publishes the capacity of its queue.
  void AddStage(const std::string& stage, int64_t queue_capacity);

  // BatchObserver
  void OnQueueDepth(const std::string& batcher, int64_t depth) override;
  void OnQueueWait(const std::string& batcher, std::chrono::microseconds wait) override;
  void OnBatch(const std::string& batcher, int64_t size, std::chrono::microseconds compute, bool ok) override;
  void OnDropped(const std::string& batcher, DropReason reason) override;

  // ServiceObserver
  void OnFacesDetected(int faces) override;
  void OnGallerySize(int64_t identities, int64_t templates, int64_t galleries) override;
  void OnCallsInProgress(int calls) override;
  void OnGallerySync(const SyncReport& report) override;
  void OnGalleryFreshness(const GalleryFreshness& freshness) override;
  // Also logs, once per change of state, so that an operator sees the outage and the recovery.
  void OnGallerySyncState(const absl::Status& status) override;

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;

  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Counter>& stream_items_;
  prometheus::Family<prometheus::Histogram>& queue_wait_;
  prometheus::Family<prometheus::Histogram>& compute_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& queue_capacity_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Family<prometheus::Counter>& batch_failures_;
  prometheus::Histogram& faces_per_image_;
  prometheus::Gauge& gallery_identities_;
  prometheus::Gauge& gallery_templates_;
  prometheus::Gauge& galleries_;
  prometheus::Gauge& calls_in_progress_;
  prometheus::Gauge& store_up_;
  prometheus::Gauge& stale_seconds_;
  prometheus::Histogram& replication_lag_;
  prometheus::Counter& changes_applied_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Gauge>& model_info_;
};

}  // namespace veriface::server
