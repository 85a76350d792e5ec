#include "trainer/bundle/bundle_writer.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/common/guarded.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/model/face_model.h"
#include "core/model/test_time.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;

absl::Status SaveWeights(const torch::nn::Module& module, const std::string& path) {
  return Guarded(absl::StrCat("cannot write '", path, "'"), [&]() -> absl::Status {
    torch::serialize::OutputArchive archive;
    module.save(archive);
    archive.save_to(path);
    return absl::OkStatus();
  });
}

}  // namespace

std::string ModuleContentHash(const std::string& arch, const torch::nn::Module& module) {
  std::string blob = arch;
  const auto add = [&blob](const std::string& name, const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
    blob += name;
    blob.append(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<size_t>(c.numel()) * sizeof(float));
  };
  for (const auto& p : module.named_parameters(/*recurse=*/true)) add(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) add(b.key(), b.value());
  return Sha256Hex(blob);
}

absl::StatusOr<ModelSpec> SaveBundle(const std::string& bundle_dir, ModelSpec spec, const MtcnnNets& detector,
                                     const std::shared_ptr<Backbone>& backbone, const std::shared_ptr<Head>& head) {
  std::error_code ec;
  fs::create_directories(bundle_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create '", bundle_dir, "': ", ec.message()));
  const auto parent = MtcnnParent(detector);
  spec.detector.arch = "mtcnn";
  spec.detector.weights = "detector.pt";
  spec.backbone.arch = backbone->arch();
  spec.backbone.params = backbone->params();
  spec.backbone.weights = "backbone.pt";
  spec.head.arch = head->arch();
  spec.head.params = head->params();
  const bool head_has_weights = !head->parameters().empty() || !head->buffers().empty();
  spec.head.weights = head_has_weights ? "head.pt" : "";
  spec.embedding_dim = head->output_dim();
  VF_RETURN_IF_ERROR(SaveWeights(*parent, (fs::path(bundle_dir) / spec.detector.weights).string()));
  VF_RETURN_IF_ERROR(SaveWeights(*backbone, (fs::path(bundle_dir) / spec.backbone.weights).string()));
  if (head_has_weights) VF_RETURN_IF_ERROR(SaveWeights(*head, (fs::path(bundle_dir) / spec.head.weights).string()));
  VF_ASSIGN_OR_RETURN(const TtaConfig test_time, ParseTta(spec.crops));
  if (test_time.flip) return absl::InvalidArgumentError("crops must not name 'flip' (that is flip_average)");
  spec.crops = test_time.spec;
  // The id names what the embedding depends on: backbone and head, with their parameters, and the test-time
  // setting. The crops enter only when there are more than the template's, so that the ids of bundles made
  // before crops existed (and the galleries that record them) stay valid.
  const std::string digest = Sha256Hex(absl::StrCat(
      ModuleContentHash(backbone->arch() + backbone->params().dump(), *backbone),
      ModuleContentHash(head->arch() + head->params().dump(), *head), spec.flip_average ? "flip" : "noflip",
      spec.crops == "none" ? "" : absl::StrCat("crops:", spec.crops)));
  spec.model_id = absl::StrCat(backbone->arch(), "+", head->arch(), "-", digest.substr(0, 12));
  VF_RETURN_IF_ERROR(WriteModelSpec(bundle_dir, spec));
  return spec;
}

}  // namespace veriface
