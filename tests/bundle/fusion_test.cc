// A fusion bundle (dlib's ResNet and MobileFaceNet, each on its own chips, with the pass-through head):
// model.json round-trips it, the bundle loads, each network gets the chip its own template makes, the fused
// cosine is exactly the mean of the two networks' cosines, and veriface-eval's pipeline embeds as the
// server's does.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/align/aligner.h"
#include "core/common/file_util.h"
#include "core/image/decode.h"
#include "core/model/face_model.h"
#include "core/model/model_spec.h"
#include "tests/bundle/pinned_mobilefacenet.h"
#include "trainer/eval/evaluator.h"

namespace veriface {
namespace {

using ::testing::HasSubstr;

// One fused bundle per test binary: importing takes a few seconds.
class FusionBundleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const auto spec = testing::ImportPinnedMobileFaceNet(BundleDir(), /*with_face_resnet=*/true);
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto model = FaceModel::Load(BundleDir(), torch::kCPU);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new std::shared_ptr<const FaceModel>(*std::move(model));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(model_, nullptr); }
  static const FaceModel& Model() { return **model_; }
  static std::string BundleDir() { return dir_->File("fused"); }

  struct Face {
    cv::Mat rgb;
    FaceDetection detection;
  };
  static Face Central(const std::string& lfw_key) {
    const auto bytes = ReadFileToString(testing::LfwDir() + "/" + lfw_key + ".jpg");
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    Face f;
    f.rgb = DecodeImage(*bytes).value();
    const auto faces = Model().Detect(f.rgb, Model().spec().detector_defaults);
    EXPECT_TRUE(faces.ok() && !faces->empty()) << lfw_key;
    f.detection = (*faces)[static_cast<size_t>(SelectFace(*faces, FaceSelection::kCentral, f.rgb.cols, f.rgb.rows))];
    return f;
  }

  static testing::TempDir* dir_;
  static std::shared_ptr<const FaceModel>* model_;
};

testing::TempDir* FusionBundleTest::dir_ = nullptr;
std::shared_ptr<const FaceModel>* FusionBundleTest::model_ = nullptr;

TEST_F(FusionBundleTest, ModelJsonListsBothNetworksAndReadsBack) {
  const auto spec = ReadModelSpec(BundleDir());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->backbone.arch, "face-resnet");
  EXPECT_EQ(spec->backbone.weights, "backbone.pt");
  ASSERT_EQ(spec->fused_backbones.size(), 1U);
  EXPECT_EQ(spec->fused_backbones[0].arch, "mobilefacenet");
  EXPECT_EQ(spec->fused_backbones[0].weights, "backbone_1.pt");
  EXPECT_EQ(spec->embedding_dim, 128 + 192);
  EXPECT_THAT(spec->model_id, ::testing::StartsWith("face-resnet+mobilefacenet+identity-"));
  const auto again = ModelSpec::FromJson(spec->ToJson());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToJson(), spec->ToJson());

  // A bundle of one network writes no such key, so that its model.json reads as it always did.
  ModelSpec single = *spec;
  single.fused_backbones.clear();
  EXPECT_FALSE(single.ToJson().contains("fused_backbones"));

  nlohmann::json bad = spec->ToJson();
  bad["fused_backbones"] = nlohmann::json::object();
  EXPECT_THAT(std::string(ModelSpec::FromJson(bad).status().message()), HasSubstr("'fused_backbones' must be"));
  bad["fused_backbones"] = {{{"weights", "x.pt"}}};
  EXPECT_THAT(std::string(ModelSpec::FromJson(bad).status().message()), HasSubstr("fused_backbones[0]"));
}

TEST_F(FusionBundleTest, EachNetworkGetsTheChipOfItsOwnTemplate) {
  ASSERT_EQ(Model().members(), 2U);
  EXPECT_EQ(Model().chip_size(0), 150);
  EXPECT_EQ(Model().chip_template(0), ChipTemplate::kDlib);
  EXPECT_EQ(Model().chip_size(1), 112);
  EXPECT_EQ(Model().chip_template(1), ChipTemplate::kArcFace);
  const Face f = Central("Abel_Pacheco/Abel_Pacheco_0001");
  const FaceViews views = Model().Cut(f.rgb, f.detection);
  ASSERT_EQ(views.crops.size(), 2U);  // crops "none": the template chip of each network
  const cv::Mat dlib = AlignFace(f.rgb, f.detection.landmarks, 150, ChipTemplate::kDlib).chip;
  const cv::Mat arcface = AlignFace(f.rgb, f.detection.landmarks, 112, ChipTemplate::kArcFace).chip;
  EXPECT_EQ(cv::norm(views.crops[0], dlib, cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(views.crops[1], arcface, cv::NORM_INF), 0);
  // The ArcFace template sits the eyes higher and closer together than dlib's at the same scale.
  const auto d = FaceTemplate(112, ChipTemplate::kDlib);
  const auto a = FaceTemplate(112, ChipTemplate::kArcFace);
  EXPECT_NEAR(a[0].x, 38.2946, 1e-9);
  EXPECT_NEAR(a[4].y, 92.2041, 1e-9);
  EXPECT_GT(a[1].x - a[0].x, 0);
  EXPECT_NE(cv::norm(a[0] - d[0]), 0);
}

// Each network's unit embedding of a face: its features of the chip and of the mirror, averaged.
torch::Tensor MemberEmbedding(const FaceModel& model, const FaceViews& views, size_t member) {
  cv::Mat mirrored;
  cv::flip(views.crops[member], mirrored, 1);
  const torch::Tensor f = model.embedder().Features({views.crops[member], mirrored}, member).value();
  return torch::nn::functional::normalize(f.mean(0, true), torch::nn::functional::NormalizeFuncOptions().dim(1))[0];
}

TEST_F(FusionBundleTest, TheFusedCosineIsTheMeanOfTheTwoNetworksCosines) {
  const std::vector<std::string> keys = {"Abel_Pacheco/Abel_Pacheco_0001", "Abel_Pacheco/Abel_Pacheco_0004",
                                         "Dean_Barker/Dean_Barker_0001"};
  std::vector<FaceViews> views;
  for (const std::string& k : keys) {
    const Face f = Central(k);
    views.push_back(Model().Cut(f.rgb, f.detection));
  }
  const auto fused = Model().Embed(views);
  ASSERT_TRUE(fused.ok()) << fused.status();
  ASSERT_EQ(fused->size(1), 320);
  for (size_t i = 0; i < views.size(); ++i) {
    const torch::Tensor expected =
        torch::cat({MemberEmbedding(Model(), views[i], 0), MemberEmbedding(Model(), views[i], 1)}) / std::sqrt(2.0);
    EXPECT_LT(((*fused)[static_cast<int64_t>(i)] - expected).abs().max().item<float>(), 1e-5F) << keys[i];
  }
  for (size_t i = 0; i < views.size(); ++i) {
    for (size_t j = i + 1; j < views.size(); ++j) {
      const double both =
          torch::dot((*fused)[static_cast<int64_t>(i)], (*fused)[static_cast<int64_t>(j)]).item<double>();
      double mean = 0;
      for (size_t m = 0; m < 2; ++m) {
        mean +=
            torch::dot(MemberEmbedding(Model(), views[i], m), MemberEmbedding(Model(), views[j], m)).item<double>() / 2;
      }
      EXPECT_NEAR(both, mean, 1e-5) << keys[i] << " vs " << keys[j];
    }
  }
  // The same person scores higher than a stranger, in the fusion as in each network.
  const auto cos = [&](int64_t a, int64_t b) { return torch::dot((*fused)[a], (*fused)[b]).item<double>(); };
  EXPECT_GT(cos(0, 1), cos(0, 2));
  EXPECT_GT(cos(0, 1), cos(1, 2));
}

TEST_F(FusionBundleTest, AFaceWithoutEveryNetworksViewsIsRefused) {
  const Face f = Central("Abel_Pacheco/Abel_Pacheco_0001");
  FaceViews one = Model().Cut(f.rgb, f.detection);
  one.crops.pop_back();
  const auto r = Model().Embed({one});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("for each of the 2 backbones"));
  FaceViews swapped = Model().Cut(f.rgb, f.detection);
  std::swap(swapped.crops[0], swapped.crops[1]);
  EXPECT_THAT(std::string(Model().Embed({swapped}).status().message()), HasSubstr("backbone 0 takes 150x150"));
}

TEST_F(FusionBundleTest, TheEvaluatorEmbedsAsTheServerDoes) {
  const std::vector<LfwImageId> ids = {{"Abel_Pacheco", 1}, {"Abel_Pacheco", 4}, {"Dean_Barker", 1}};
  LfwImageResolver resolver(testing::LfwDir());
  EmbedOptions options;
  options.progress = false;
  const auto embedded = EmbedImages(Model(), ids, resolver, options);
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  for (size_t i = 0; i < ids.size(); ++i) {
    const int at = embedded->FindImage(ids[i]);
    ASSERT_GE(at, 0);
    const Face f = Central(ids[i].Key());
    const torch::Tensor served = Model().Embed({Model().Cut(f.rgb, f.detection)}).value()[0];
    const torch::Tensor evaluated = torch::tensor(embedded->embeddings[static_cast<size_t>(at)]);
    EXPECT_LT((served - evaluated).abs().max().item<float>(), 1e-5F) << ids[i].Key();
  }
}

}  // namespace
}  // namespace veriface
