#include "server/call_guard.h"

namespace veriface::server {

const char* RpcName(Rpc rpc) {
  switch (rpc) {
    case Rpc::kEmbed:
      return "Embed";
    case Rpc::kVerify:
      return "Verify";
    case Rpc::kEnroll:
      return "Enroll";
    case Rpc::kEnrollStream:
      return "EnrollStream";
    case Rpc::kIdentify:
      return "Identify";
    case Rpc::kDeleteIdentity:
      return "DeleteIdentity";
    case Rpc::kGetIdentity:
      return "GetIdentity";
    case Rpc::kListIdentities:
      return "ListIdentities";
    case Rpc::kGetModelInfo:
      return "GetModelInfo";
    case Rpc::kCreateGallery:
      return "CreateGallery";
    case Rpc::kListGalleries:
      return "ListGalleries";
    case Rpc::kDeleteGallery:
      return "DeleteGallery";
    case Rpc::kGetGalleryReport:
      return "GetGalleryReport";
  }
  return "Unknown";
}

bool RpcWritesGallery(Rpc rpc) {
  return rpc == Rpc::kEnroll || rpc == Rpc::kEnrollStream || rpc == Rpc::kDeleteIdentity ||
         rpc == Rpc::kCreateGallery || rpc == Rpc::kDeleteGallery;
}

}  // namespace veriface::server
