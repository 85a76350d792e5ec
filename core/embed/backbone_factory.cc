#include "absl/strings/str_cat.h"
#include "core/embed/backbone.h"
#include "core/embed/face_resnet.h"

namespace veriface {

absl::StatusOr<std::shared_ptr<Backbone>> MakeBackbone(const std::string& arch, const nlohmann::json& params) {
  if (arch == "face-resnet") return std::shared_ptr<Backbone>(std::make_shared<FaceResNet>());
  return absl::InvalidArgumentError(absl::StrCat("unknown backbone architecture '", arch, "'"));
}

}  // namespace veriface
