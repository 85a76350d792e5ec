#include "server/health_service.h"

#include <chrono>
#include <utility>

namespace veriface::server {
namespace {

using grpc::health::v1::HealthCheckResponse;

// How often a Watch looks whether its caller has gone.
constexpr auto kWatchPoll = std::chrono::milliseconds(200);

}  // namespace

HealthService::HealthService(std::string service_name) : service_name_(std::move(service_name)) {}

void HealthService::SetServing(bool serving) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    serving_ = serving;
  }
  changed_.notify_all();
}

void HealthService::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    serving_ = false;
    shutdown_ = true;
  }
  changed_.notify_all();
}

grpc::Status HealthService::Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  if (!request->service().empty() && request->service() != service_name_) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service '" + request->service() + "'");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  response->set_status(serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  const bool known = request->service().empty() || request->service() == service_name_;
  std::unique_lock<std::mutex> lock(mutex_);
  bool first = true;
  bool last_sent = false;
  while (true) {
    if (first || (known && serving_ != last_sent)) {
      HealthCheckResponse response;
      response.set_status(!known     ? HealthCheckResponse::SERVICE_UNKNOWN
                          : serving_ ? HealthCheckResponse::SERVING
                                     : HealthCheckResponse::NOT_SERVING);
      last_sent = serving_;
      first = false;
      lock.unlock();
      const bool written = writer->Write(response);
      lock.lock();
      if (!written) return grpc::Status::OK;
    }
    if (shutdown_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
    changed_.wait_for(lock, kWatchPoll);
  }
}

}  // namespace veriface::server
