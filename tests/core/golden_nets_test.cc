// Each MTCNN network, and the MTCNN pre-processing, against the reference goldens (nets/nets.json).
// Tolerances from the goldens' README: outputs < 1e-4, patches equal (1 grey level allowed for another
// OpenCV build), input tensors < 1e-5.

#include <gtest/gtest.h>

#include "core/detect/mtcnn.h"
#include "tests/testing/goldens.h"
#include "tests/testing/test_env.h"

namespace veriface {
namespace {

using testing::GoldenImage;
using testing::LoadGoldenJson;
using testing::LoadGoldenTensor;

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

std::vector<mtcnn::Box> Boxes(const nlohmann::json& j) {
  std::vector<mtcnn::Box> boxes;
  for (const auto& b : j) boxes.push_back({b[0], b[1], b[2], b[3]});
  return boxes;
}

class GoldenNetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::DefaultModel();
    ASSERT_NE(model_, nullptr);
    nets_json_ = LoadGoldenJson("nets/nets.json");
    const auto pipeline = LoadGoldenJson("lfw_pipeline.json");
    for (const auto& record : pipeline["images"]) {
      if (record["name"] == "hconcat3") image_ = GoldenImage(record);
    }
    ASSERT_FALSE(image_.empty());
  }
  // Module holders share the networks; a copy gives the non-const access forward() needs.
  MtcnnNets nets() const { return model_->detector().nets(); }

  std::shared_ptr<const FaceModel> model_;
  nlohmann::json nets_json_;
  cv::Mat image_;
};

TEST_F(GoldenNetsTest, PyramidScaleAndLevelMatch) {
  const auto& p = nets_json_["pnet"];
  const auto scales = mtcnn::PyramidScales(image_.rows, image_.cols, DetectorOptions{});
  const int index = p["scale_index"];
  ASSERT_GT(static_cast<int>(scales.size()), index);
  EXPECT_NEAR(scales[static_cast<size_t>(index)], p["scale"].get<double>(), 1e-15);
  cv::Mat rgb_float;
  image_.convertTo(rgb_float, CV_32FC3);
  const auto level = mtcnn::PyramidLevelTensor(rgb_float, p["scale"].get<double>());
  EXPECT_LT(MaxAbsDiff(level, LoadGoldenTensor("nets", p["input"])), 1e-5);
}

TEST_F(GoldenNetsTest, PNetOnStoredInput) {
  torch::NoGradGuard no_grad;
  const auto& p = nets_json_["pnet"];
  auto [prob, reg] = nets().pnet->forward(LoadGoldenTensor("nets", p["input"]));
  EXPECT_LT(MaxAbsDiff(prob[0], LoadGoldenTensor("nets", p["prob"])), 1e-4);
  EXPECT_LT(MaxAbsDiff(reg[0], LoadGoldenTensor("nets", p["reg"])), 1e-4);
}

TEST_F(GoldenNetsTest, RNetOnStoredInput) {
  torch::NoGradGuard no_grad;
  const auto& r = nets_json_["rnet"];
  auto [prob, reg] = nets().rnet->forward(LoadGoldenTensor("nets", r["input"]));
  EXPECT_LT(MaxAbsDiff(prob, LoadGoldenTensor("nets", r["prob"])), 1e-4);
  EXPECT_LT(MaxAbsDiff(reg, LoadGoldenTensor("nets", r["reg"])), 1e-4);
}

TEST_F(GoldenNetsTest, ONetOnStoredInput) {
  torch::NoGradGuard no_grad;
  const auto& o = nets_json_["onet"];
  auto [prob, reg, landmarks] = nets().onet->forward(LoadGoldenTensor("nets", o["input"]));
  EXPECT_LT(MaxAbsDiff(prob, LoadGoldenTensor("nets", o["prob"])), 1e-4);
  EXPECT_LT(MaxAbsDiff(reg, LoadGoldenTensor("nets", o["reg"])), 1e-4);
  EXPECT_LT(MaxAbsDiff(landmarks, LoadGoldenTensor("nets", o["landmarks"])), 1e-4);
}

TEST_F(GoldenNetsTest, PatchesAndInputsMatchIncludingBorderBoxes) {
  for (const auto& [net, size] : {std::pair<std::string, int>{"rnet", 24}, {"onet", 48}}) {
    SCOPED_TRACE(net);
    const auto& e = nets_json_[net];
    const auto patches = mtcnn::ExtractPatches(image_, Boxes(e["boxes_faceapi"]), size);
    EXPECT_LE(MaxAbsDiff(patches, LoadGoldenTensor("nets", e["patches_rgb_u8"])), 1.0);
    EXPECT_LT(MaxAbsDiff(mtcnn::ToNetInput(LoadGoldenTensor("nets", e["patches_rgb_u8"])),
                         LoadGoldenTensor("nets", e["input"])),
              1e-5);
  }
}

}  // namespace
}  // namespace veriface
