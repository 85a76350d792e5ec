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
                                     const std::vector<std::shared_ptr<Backbone>>& backbones,
                                     const std::shared_ptr<Head>& head) {
  if (backbones.empty()) return absl::InvalidArgumentError("a bundle needs a backbone");
  int64_t features = 0;
  for (const auto& b : backbones) features += b->feature_dim();
  if (head->input_dim() != features) {
    return absl::InvalidArgumentError(
        absl::StrCat("the head takes ", head->input_dim(), " features, the backbones give ", features));
  }
  std::error_code ec;
  fs::create_directories(bundle_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create '", bundle_dir, "': ", ec.message()));
  const auto parent = MtcnnParent(detector);
  spec.detector.arch = "mtcnn";
  spec.detector.weights = "detector.pt";
  // The first backbone keeps the file name of a bundle of one network; a fusion's others are numbered.
  std::vector<ComponentSpec> members;
  for (size_t i = 0; i < backbones.size(); ++i) {
    members.push_back(ComponentSpec{backbones[i]->arch(),
                                    i == 0 ? std::string("backbone.pt") : absl::StrCat("backbone_", i, ".pt"),
                                    backbones[i]->params()});
  }
  spec.backbone = members.front();
  spec.fused_backbones.assign(members.begin() + 1, members.end());
  spec.head.arch = head->arch();
  spec.head.params = head->params();
  const bool head_has_weights = !head->parameters().empty() || !head->buffers().empty();
  spec.head.weights = head_has_weights ? "head.pt" : "";
  spec.embedding_dim = head->output_dim();
  VF_RETURN_IF_ERROR(SaveWeights(*parent, (fs::path(bundle_dir) / spec.detector.weights).string()));
  for (size_t i = 0; i < backbones.size(); ++i) {
    VF_RETURN_IF_ERROR(SaveWeights(*backbones[i], (fs::path(bundle_dir) / members[i].weights).string()));
  }
  if (head_has_weights) VF_RETURN_IF_ERROR(SaveWeights(*head, (fs::path(bundle_dir) / spec.head.weights).string()));
  VF_ASSIGN_OR_RETURN(const TtaConfig test_time, ParseTta(spec.crops));
  if (test_time.flip) return absl::InvalidArgumentError("crops must not name 'flip' (that is flip_average)");
  spec.crops = test_time.spec;
  // The id names what the embedding depends on: backbones and head, with their parameters, and the test-time
  // setting. The crops enter only when there are more than the template's, so that the ids of bundles made
  // before crops existed (and the galleries that record them) stay valid; a single backbone hashes as it did
  // before fusions existed, for the same reason.
  std::string content, name;
  for (const auto& b : backbones) {
    absl::StrAppend(&content, ModuleContentHash(b->arch() + b->params().dump(), *b));
    absl::StrAppend(&name, b->arch(), "+");
  }
  const std::string digest = Sha256Hex(absl::StrCat(
      content, ModuleContentHash(head->arch() + head->params().dump(), *head), spec.flip_average ? "flip" : "noflip",
      spec.crops == "none" ? "" : absl::StrCat("crops:", spec.crops)));
  spec.model_id = absl::StrCat(name, head->arch(), "-", digest.substr(0, 12));
  VF_RETURN_IF_ERROR(WriteModelSpec(bundle_dir, spec));
  return spec;
}

}  // namespace veriface
