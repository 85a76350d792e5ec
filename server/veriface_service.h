#pragma once
// veriface.v1.Veriface: thin glue between gRPC messages and the serving core (core/serving). Each RPC
// translates its request into the core's types, calls FaceService, and translates the answer or the
// status back (see the status table in veriface.proto); admission, metrics and logging wrap every call.

#include <memory>

#include "absl/status/status.h"
#include "core/serving/face_service.h"
#include "proto/veriface/v1/veriface.grpc.pb.h"
#include "server/audit_log.h"
#include "server/call_guard.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/rate_limiter.h"

namespace veriface::server {

class VerifaceService final : public veriface::v1::Veriface::Service {
 public:
  // Until Load() succeeds every RPC answers UNAVAILABLE.
  // Every call passes `guard` (who is it, may it call this?) and then `limiter` (its key's rate limit);
  // every write, admitted or not, leaves a line in `audit`.
  VerifaceService(ServerConfig config, std::shared_ptr<Metrics> metrics, std::shared_ptr<const CallGuard> guard,
                  std::shared_ptr<RateLimiter> limiter, std::shared_ptr<AuditLog> audit);
  ~VerifaceService() override;

  // Loads the model and the gallery (refusing a gallery made with another model), then starts serving.
  absl::Status Load();
  // After the gRPC server has stopped: finishes queued model work.
  void Shutdown();

  grpc::Status Embed(grpc::ServerContext* context, const v1::EmbedRequest* request,
                     v1::EmbedResponse* response) override;
  grpc::Status Verify(grpc::ServerContext* context, const v1::VerifyRequest* request,
                      v1::VerifyResponse* response) override;
  grpc::Status Enroll(grpc::ServerContext* context, const v1::EnrollRequest* request,
                      v1::EnrollResponse* response) override;
  grpc::Status EnrollStream(grpc::ServerContext* context,
                            grpc::ServerReaderWriter<v1::EnrollStreamResponse, v1::EnrollRequest>* stream) override;
  grpc::Status Identify(grpc::ServerContext* context, const v1::IdentifyRequest* request,
                        v1::IdentifyResponse* response) override;
  grpc::Status DeleteIdentity(grpc::ServerContext* context, const v1::DeleteIdentityRequest* request,
                              v1::DeleteIdentityResponse* response) override;
  grpc::Status GetIdentity(grpc::ServerContext* context, const v1::GetIdentityRequest* request,
                           v1::Identity* response) override;
  grpc::Status ListIdentities(grpc::ServerContext* context, const v1::ListIdentitiesRequest* request,
                              v1::ListIdentitiesResponse* response) override;
  grpc::Status GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest* request,
                            v1::ModelInfo* response) override;
  grpc::Status CreateGallery(grpc::ServerContext* context, const v1::CreateGalleryRequest* request,
                             v1::GalleryInfo* response) override;
  grpc::Status ListGalleries(grpc::ServerContext* context, const v1::ListGalleriesRequest* request,
                             v1::ListGalleriesResponse* response) override;
  grpc::Status GetGalleryReport(grpc::ServerContext* context, const v1::GalleryReportRequest* request,
                                v1::GalleryReport* response) override;
  grpc::Status DeleteGallery(grpc::ServerContext* context, const v1::DeleteGalleryRequest* request,
                             v1::GalleryInfo* response) override;

 private:
  // Admits the call, runs fn(service, budget) unless the service is still loading, and records the outcome
  // (in `audit` too, for a write: Handle fills in the method, caller and outcome around what fn adds).
  template <typename Fn>
  grpc::Status Handle(Rpc rpc, grpc::ServerContext* context, Fn&& fn, AuditEvent* audit = nullptr);
  // OK, or RESOURCE_EXHAUSTED with a retry-after-ms trailer when the key's bucket is empty.
  grpc::Status Limit(const std::string& key_name, grpc::ServerContext* context);

  const ServerConfig config_;
  const std::shared_ptr<Metrics> metrics_;
  const std::shared_ptr<const CallGuard> guard_;
  const std::shared_ptr<RateLimiter> limiter_;
  const std::shared_ptr<AuditLog> audit_;
  std::shared_ptr<FaceService> service_;  // read and written with std::atomic_load / std::atomic_store
};

}  // namespace veriface::server
