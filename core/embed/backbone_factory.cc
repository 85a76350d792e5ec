#include "absl/strings/str_cat.h"
#include "core/embed/backbone.h"
#include "core/embed/face_resnet.h"
#include "core/embed/inception_resnet_v2.h"
#include "core/embed/mobilefacenet.h"
#include "core/embed/mobilenetv2.h"
#include "core/embed/param_reader.h"
#include "core/embed/vgg19.h"

namespace veriface {

absl::StatusOr<std::shared_ptr<Backbone>> MakeBackbone(const std::string& arch, const nlohmann::json& params) {
  if (arch == "face-resnet") return std::shared_ptr<Backbone>(std::make_shared<FaceResNet>());
  if (arch == "mobilefacenet") {
    // A fixed architecture (the imported weights' own): no parameters to choose.
    if (auto ok = ParamReader(params, "mobilefacenet params").CheckNoUnknownKeys(); !ok.ok()) return ok;
    return std::shared_ptr<Backbone>(std::make_shared<MobileFaceNet>());
  }
  if (arch == "mobilenetv2") return MobileNetV2::Create(params);
  if (arch == "vgg19") return Vgg19::Create(params);
  if (arch == "inception-resnet-v2") return InceptionResNetV2::Create(params);
  return absl::InvalidArgumentError(absl::StrCat("unknown backbone architecture '", arch, "'"));
}

}  // namespace veriface
