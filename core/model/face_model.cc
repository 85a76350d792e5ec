#include "core/model/face_model.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/nn/conv2d.h"

namespace veriface {

std::shared_ptr<torch::nn::Module> MtcnnParent(const MtcnnNets& nets) {
  auto parent = std::make_shared<torch::nn::Module>("mtcnn");
  parent->register_module("pnet", nets.pnet.ptr());
  parent->register_module("rnet", nets.rnet.ptr());
  parent->register_module("onet", nets.onet.ptr());
  return parent;
}

namespace {

namespace fs = std::filesystem;

absl::Status LoadWeights(torch::nn::Module& module, const std::string& bundle_dir, const ComponentSpec& c) {
  if (c.weights.empty()) {
    if (module.parameters().empty() && module.buffers().empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("model.json: ", c.arch, " needs a weights file"));
  }
  const std::string path = (fs::path(bundle_dir) / c.weights).string();
  if (!fs::exists(path)) return absl::NotFoundError(absl::StrCat("weights file '", path, "' does not exist"));
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    module.load(archive);
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat("cannot load '", path, "' into ", c.arch, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace

FaceModel::FaceModel(ModelSpec spec, std::string bundle_dir, torch::Device device,
                     std::unique_ptr<MtcnnDetector> detector, std::unique_ptr<Embedder> embedder, TtaConfig test_time)
    : spec_(std::move(spec)),
      bundle_dir_(std::move(bundle_dir)),
      device_(device),
      detector_(std::move(detector)),
      embedder_(std::move(embedder)),
      test_time_(std::move(test_time)) {}

absl::StatusOr<std::shared_ptr<const FaceModel>> FaceModel::Load(const std::string& bundle_dir, torch::Device device) {
  VF_ASSIGN_OR_RETURN(ModelSpec spec, ReadModelSpec(bundle_dir));
  if (spec.detector.arch != "mtcnn") {
    return absl::InvalidArgumentError(absl::StrCat("unknown detector architecture '", spec.detector.arch, "'"));
  }
  MtcnnNets nets{PNet(), RNet(), ONet()};
  auto parent = MtcnnParent(nets);
  VF_RETURN_IF_ERROR(LoadWeights(*parent, bundle_dir, spec.detector));

  std::vector<ComponentSpec> members = {spec.backbone};
  members.insert(members.end(), spec.fused_backbones.begin(), spec.fused_backbones.end());
  std::vector<std::shared_ptr<Backbone>> backbones;
  int64_t features = 0;
  for (const ComponentSpec& c : members) {
    VF_ASSIGN_OR_RETURN(auto backbone, MakeBackbone(c.arch, c.params));
    VF_RETURN_IF_ERROR(LoadWeights(*backbone, bundle_dir, c));
    features += backbone->feature_dim();
    backbones.push_back(std::move(backbone));
  }
  VF_ASSIGN_OR_RETURN(auto head, MakeHead(spec.head.arch, features, spec.head.params));
  VF_RETURN_IF_ERROR(LoadWeights(*head, bundle_dir, spec.head));
  if (head->output_dim() != spec.embedding_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.json: embedding_dim ", spec.embedding_dim, " but the head outputs ", head->output_dim()));
  }
  VF_ASSIGN_OR_RETURN(TtaConfig test_time, ParseTta(spec.TestTimeSpec()));
  EmbedderOptions options;
  options.flip_average = spec.flip_average;
  options.max_chips_per_pass = device.is_cpu() ? kCpuChipsPerPass : 0;
  auto detector = std::make_unique<MtcnnDetector>(std::move(nets), device);
  auto embedder = std::make_unique<Embedder>(std::move(backbones), std::move(head), device, options);
  if (device.is_cuda()) {
    // LibTorch lets cuDNN and cuBLAS use TF32 (10 mantissa bits) on Ampere and later GPUs. On an H200 that
    // moved P-Net's outputs by 7e-4 and end-to-end descriptors by 0.035, past the goldens' 1e-4 and 0.03
    // (bench/device/README.md), so these networks run in full float32 there. The switch is the process's.
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  if (device.is_cpu()) {
    // oneDNN's blocked weight layout once here, rather than a reorder in every call (core/nn/conv2d.h).
    PrepackConvolutions(*parent);
    for (const auto& b : embedder->backbones()) PrepackConvolutions(*b);
  }
  return std::shared_ptr<const FaceModel>(new FaceModel(std::move(spec), bundle_dir, device, std::move(detector),
                                                        std::move(embedder), std::move(test_time)));
}

FaceViews FaceModel::Cut(const cv::Mat& rgb, const FaceDetection& face) const {
  FaceViews views = CutCrops(rgb, face.landmarks, chip_size(), test_time_.crops, chip_template());
  for (size_t m = 1; m < members(); ++m) {
    FaceViews more = CutCrops(rgb, face.landmarks, chip_size(m), test_time_.crops, chip_template(m));
    views.crops.insert(views.crops.end(), more.crops.begin(), more.crops.end());
  }
  return views;
}

absl::StatusOr<std::vector<std::vector<float>>> FaceModel::EmbedRows(const std::vector<FaceViews>& faces) const {
  VF_ASSIGN_OR_RETURN(const torch::Tensor embeddings, Embed(faces));
  const int64_t dim = embeddings.size(1);
  const float* data = embeddings.data_ptr<float>();
  std::vector<std::vector<float>> rows;
  rows.reserve(faces.size());
  for (int64_t i = 0; i < embeddings.size(0); ++i) rows.emplace_back(data + i * dim, data + (i + 1) * dim);
  return rows;
}

}  // namespace veriface
