#pragma once
// grpc.health.v1.Health, written here rather than gRPC's built-in one so that the server reports
// NOT_SERVING from its very first moment until the model and gallery are loaded, and again from the
// start of shutdown. Knows the whole server ("") and the Veriface service by name.

#include <condition_variable>
#include <mutex>
#include <string>

#include "proto/grpc_health/v1/health.grpc.pb.h"

namespace veriface::server {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  // `service_name` is the one named service answered besides "" (e.g. "veriface.v1.Veriface").
  explicit HealthService(std::string service_name);

  void SetServing(bool serving);
  // Ends every Watch after it has sent NOT_SERVING, so that they do not hold up the server's shutdown.
  void Shutdown();

  grpc::Status Check(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  const std::string service_name_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool serving_ = false;
  bool shutdown_ = false;
};

}  // namespace veriface::server
