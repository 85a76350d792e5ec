#pragma once
// The per-call admission check every Veriface RPC passes before it does any work: the seam where API
// keys and roles plug in. The health service does not go through it, so probes stay open.

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>
#include <utility>

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

// A guard's answer: whether the call may run, and who it is (for rate limits and the audit log).
struct Admission {
  // OK lets the call run; any other status (UNAUTHENTICATED, PERMISSION_DENIED, ...) is what it fails with.
  grpc::Status status;
  // The name of the API key the call presented, when it is one of the server's (also when its role is too
  // low); empty without keys. Never the key.
  std::string key_name;
};

class CallGuard {
 public:
  virtual ~CallGuard() = default;
  // Called concurrently from many threads; must not block for long.
  virtual Admission Admit(const grpc::ServerContext& context, Rpc rpc) const = 0;
};

// Lets every call through: the behaviour when no credentials are configured.
class AllowAllGuard final : public CallGuard {
 public:
  Admission Admit(const grpc::ServerContext&, Rpc) const override { return {}; }
};

// A guard that can be replaced while the server runs (SIGHUP re-reads the API keys): calls already
// admitted finish as they were; every later call meets the new guard. No connection is dropped.
class SwappableGuard final : public CallGuard {
 public:
  explicit SwappableGuard(std::shared_ptr<const CallGuard> first) : current_(std::move(first)) {}
  Admission Admit(const grpc::ServerContext& context, Rpc rpc) const override {
    return std::atomic_load(&current_)->Admit(context, rpc);
  }
  void Replace(std::shared_ptr<const CallGuard> next) { std::atomic_store(&current_, std::move(next)); }

 private:
  std::shared_ptr<const CallGuard> current_;  // read and written with std::atomic_load / std::atomic_store
};

}  // namespace veriface::server
