#pragma once
// The per-call admission check every Veriface RPC passes before it does any work: the seam where API
// keys and roles plug in. The health service does not go through it, so probes stay open.

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <memory>

namespace veriface::server {

enum class Rpc {
  kEmbed,
  kVerify,
  kEnroll,
  kEnrollStream,
  kIdentify,
  kDeleteIdentity,
  kGetIdentity,
  kListIdentities,
  kGetModelInfo,
  kCreateGallery,
  kListGalleries,
  kDeleteGallery,
  kGetGalleryReport,
};

// Every RPC of veriface.v1.Veriface.
inline constexpr Rpc kAllRpcs[] = {
    Rpc::kEmbed,          Rpc::kVerify,        Rpc::kEnroll,          Rpc::kEnrollStream, Rpc::kIdentify,
    Rpc::kDeleteIdentity, Rpc::kGetIdentity,   Rpc::kListIdentities,  Rpc::kGetModelInfo, Rpc::kCreateGallery,
    Rpc::kListGalleries,  Rpc::kDeleteGallery, Rpc::kGetGalleryReport};

// The method's name as in the proto ("Verify", ...), used in metrics and logs.
const char* RpcName(Rpc rpc);

// True for the RPCs that change the gallery (Enroll, EnrollStream, DeleteIdentity, CreateGallery,
// DeleteGallery).
bool RpcWritesGallery(Rpc rpc);

class CallGuard {
 public:
  virtual ~CallGuard() = default;
  // OK lets the call run; any other status (UNAUTHENTICATED, PERMISSION_DENIED, ...) is what the call
  // fails with. Called concurrently from many threads; must not block for long.
  virtual grpc::Status Admit(const grpc::ServerContext& context, Rpc rpc) const = 0;
};

// Lets every call through: the behaviour when no credentials are configured.
class AllowAllGuard final : public CallGuard {
 public:
  grpc::Status Admit(const grpc::ServerContext&, Rpc) const override { return grpc::Status::OK; }
};

}  // namespace veriface::server
